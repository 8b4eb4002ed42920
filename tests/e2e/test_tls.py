"""HTTPS end to end: a private CA and a server certificate made with `openssl`, a real server serving
them (`--tls-cert/--tls-key`), a real agent that runs a task through it trusting the CA (`--ca-file` /
`$THRESHER_CA_FILE`), and clients without the CA refused with a clear error, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from tests.e2e.test_cli_up import THRESHER
from tests.e2e.test_server_startup import _one_line_error, _server

from thresher.client.http import HttpClient, TlsFailed

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca_and_server_cert(folder: Path, name: str = "ca") -> tuple[Path, Path, Path]:
    """A private CA and a certificate it signed for 127.0.0.1 and localhost: (CA cert, cert, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN=Thresher test {name}", cwd=folder)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                       "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
                                       "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", f"{name}.pem", "-CAkey", f"{name}.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=folder)
    return folder / f"{name}.pem", folder / "server.pem", folder / "server.key"


@pytest.fixture
def no_saved_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's clients find no CA file but the one they are given."""
    monkeypatch.delenv("THRESHER_CA_FILE", raising=False)
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path / "client-home"))


def _cli(farm: Any, *args: str, ca: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in farm.env.items() if k != "THRESHER_CA_FILE"}
    root = ["--ca-file", str(ca)] if ca else []
    return subprocess.run([*THRESHER, *root, *args, "--server", farm.server_url, "--token", farm.admin_token],
                          env=env, capture_output=True, text=True, timeout=60)


def test_a_task_runs_over_https_and_a_client_without_the_ca_is_refused(
        make_farm: Callable[..., Any], tmp_path: Path, no_saved_ca: None) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path / "pki")
    farm = make_farm(server_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca_file=ca)
    assert farm.server_url.startswith("https://127.0.0.1:")
    farm.start_agent("secure-1", cores=1)  # trusts the CA through $THRESHER_CA_FILE
    job_id = farm.api.post("/jobs", {"name": "over tls", "layers": [{
        "name": "l", "frames": "1-2", "resources": {"cores": 1, "memory": "64M"},
        "args": {"command": [sys.executable, "-c", "print('through TLS')"]}}]})["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["state"] == "succeeded", timeout=60)

    # A client without the CA: refused, saying what to do.
    with pytest.raises(TlsFailed) as refused:
        HttpClient(farm.server_url, farm.admin_token).get("/health")
    assert "cannot verify the TLS certificate" in str(refused.value) and "--ca-file" in str(refused.value)
    # Trusting another CA is no better, and says which file did not vouch for it.
    other_ca, _, _ = make_ca_and_server_cert(tmp_path / "other", "other")
    with pytest.raises(TlsFailed, match="the CA file .*other.pem does not vouch for it"):
        HttpClient(farm.server_url, farm.admin_token, ca_file=other_ca).get("/health")
    # Plain HTTP to the HTTPS port.
    with pytest.raises(TlsFailed, match="use https://"):
        HttpClient(farm.server_url.replace("https://", "http://"), farm.admin_token).get("/health")
    with pytest.raises(TlsFailed, match="the CA file .* does not exist"):
        HttpClient(farm.server_url, farm.admin_token, ca_file=tmp_path / "nope.pem")

    # The CLI: one line without the CA, the jobs with it (`thresher --ca-file`).
    line = _one_line_error(_cli(farm, "jobs", "--json"))
    assert "cannot verify the TLS certificate" in line and "--ca-file" in line
    listed = _cli(farm, "jobs", "--json", ca=ca)
    assert listed.returncode == 0, listed.stderr
    assert "over tls" in listed.stdout

    # An agent without the CA stops at once with the reason (exit 2), instead of retrying forever.
    env = {k: v for k, v in farm.env.items() if k != "THRESHER_CA_FILE"}
    agent = subprocess.run([sys.executable, "-m", "thresher.agent", "--server", farm.server_url, "--token",
                            farm.enroll_token, "--name", "untrusting", "--state-dir", str(tmp_path / "untrusting")],
                           env=env, capture_output=True, text=True, timeout=60)
    assert agent.returncode == 2, agent.stdout + agent.stderr
    assert "cannot verify the TLS certificate" in agent.stderr and "Traceback" not in agent.stderr


def test_server_refuses_missing_or_mismatched_tls_files(tmp_path: Path) -> None:
    _, cert, key = make_ca_and_server_cert(tmp_path / "pki")
    _, other_cert, _ = make_ca_and_server_cert(tmp_path / "other", "other")
    line = _one_line_error(_server(tmp_path, "--port", "0", "--tls-cert", str(tmp_path / "missing.pem"),
                                   "--tls-key", str(key)))
    assert "missing.pem does not exist" in line and "--tls-cert" in line
    line = _one_line_error(_server(tmp_path, "--port", "0", "--tls-cert", str(other_cert), "--tls-key", str(key)))
    assert "does not belong to the certificate" in line
    (tmp_path / "empty.pem").write_text("")
    line = _one_line_error(_server(tmp_path, "--port", "0", "--tls-cert", str(cert),
                                   "--tls-key", str(tmp_path / "empty.pem")))
    assert "not a PEM file" in line and "--tls-key" in line
    if os.geteuid() != 0:  # root reads any file
        unreadable = tmp_path / "unreadable.key"
        unreadable.write_bytes(key.read_bytes())
        unreadable.chmod(0)
        line = _one_line_error(_server(tmp_path, "--port", "0", "--tls-cert", str(cert),
                                       "--tls-key", str(unreadable)))
        assert "cannot read the TLS private key" in line
    result = _server(tmp_path, "--port", "0", "--tls-cert", str(cert))
    assert result.returncode == 2 and "tls_cert and tls_key go together" in result.stderr
    assert "Traceback" not in result.stderr
