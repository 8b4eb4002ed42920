"""Spool, state folder and node facts: what must survive an agent restart, and what a node reports."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import psutil
import pytest

from thresher.agent import resources
from thresher.agent.reporter import utf8_complete_len
from thresher.agent.spool import Spool, file_key, write_json_atomic
from thresher.agent.state_dir import default_state_dir


def report(attempt_id: object, **kw: object) -> dict:
    return {"attempt_id": attempt_id, "status": "succeeded", "exit_code": 0, "cpu_s": 1.0, "peak_rss_mb": 2.0,
            "reason": None, "log_size": 3, "ended_at": "2024-01-01T00:00:00+00:00", **kw}


def test_reports_survive_a_new_spool_instance(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put_report(report(7))
    spool.put_report(report(8, status="failed"))
    again = Spool(tmp_path)
    assert sorted(r["attempt_id"] for r in again.pending()) == [7, 8]
    assert {r["attempt_id"]: r["status"] for r in again.pending()}[8] == "failed"
    again.remove_report(7)
    assert Spool(tmp_path).pending_ids() == [8]
    again.remove_report(7)  # idempotent


def test_report_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put_report(report(1))
    spool.put_report(report(1, log_size=99))
    assert [r["log_size"] for r in spool.pending()] == [99]
    assert sorted(p.name for p in spool.spool_dir.iterdir()) == ["1.json"]


def test_corrupt_report_is_moved_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (spool.spool_dir / "5.json").write_text("{half")
    spool.put_report(report(6))
    assert spool.pending_ids() == [6]
    assert (spool.spool_dir / "5.json.bad").exists()


def test_running_records(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.mark_running(3, pid=0, pgid=0, create_time=0.0, started_at="t0")
    spool.mark_running(3, pid=123, pgid=123, create_time=1.5, started_at="t0")
    spool.mark_running("a/../b", pid=9, pgid=9, create_time=2.0, started_at="t1")
    records = {str(r["attempt_id"]): r for r in Spool(tmp_path).running_records()}
    assert records["3"]["pid"] == 123
    assert records["a/../b"]["pgid"] == 9
    spool.clear_running(3)
    assert [r["attempt_id"] for r in spool.running_records()] == ["a/../b"]


def test_file_key_is_path_safe() -> None:
    assert file_key(12) == "12"
    assert "/" not in file_key("../../etc/passwd")
    assert file_key("..") not in ("..", ".")


def test_write_json_atomic_mode(tmp_path: Path) -> None:
    path = tmp_path / "cred.json"
    write_json_atomic(path, {"token": "x"}, mode=0o600, durable=True)
    assert json.loads(path.read_text()) == {"token": "x"}
    assert (path.stat().st_mode & 0o777) == 0o600


def test_log_paths(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.log_path(4)
    assert path == tmp_path / "logs" / "4.log"
    path.write_text("x")
    spool.remove_log(4)
    assert not path.exists()
    spool.remove_log(4)


def test_utf8_complete_len() -> None:
    text = "aé€😀".encode()  # 1 + 2 + 3 + 4 bytes
    assert utf8_complete_len(text) == len(text)
    for cut in range(len(text) + 1):
        n = utf8_complete_len(text[:cut])
        text[:n].decode("utf-8")  # never ends inside a character
        assert cut - n < 4
    assert utf8_complete_len(b"") == 0
    assert utf8_complete_len("é".encode()[:1]) == 0


def test_default_state_dir_honours_thresher_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    assert default_state_dir("node-1") == tmp_path / "agents" / "node-1"
    monkeypatch.delenv("THRESHER_HOME")
    assert default_state_dir("node-1").name == "agent-node-1"


def test_facts_detection_and_overrides() -> None:
    facts = resources.detect_facts()
    assert facts.cores >= 1 and facts.memory_mb > 0
    assert facts.name and facts.hostname and facts.os
    assert all(isinstance(g.uuid, str) for g in facts.gpus)
    facts = resources.detect_facts(name="n1", cores=3, memory_mb=1000, gpus=2, tags=["a", "", "b"])
    body = facts.to_json()
    assert body["name"] == "n1" and body["cores"] == 3 and body["memory_mb"] == 1000
    assert [g["index"] for g in body["gpus"]] == [0, 1]
    assert body["tags"] == ["a", "b"]
    assert resources.detect_facts(gpus=0).gpus == []
    with pytest.raises(ValueError):
        resources.detect_facts(cores=0)


def test_the_mac_address_is_the_first_real_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    link = psutil.AF_LINK
    interfaces = {
        "lo": [SimpleNamespace(family=link, address="00:00:00:00:00:00")],
        "eth1": [SimpleNamespace(family=link, address="52-54-00-AB-CD-02")],  # Windows writes dashes
        "eth0": [SimpleNamespace(family=socket.AF_INET, address="10.0.0.5"),
                 SimpleNamespace(family=link, address="52:54:00:AB:CD:01")],
    }
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: interfaces)
    assert resources.detect_mac() == "52:54:00:ab:cd:01"
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {"lo": interfaces["lo"]})
    assert resources.detect_mac() is None
    monkeypatch.undo()
    real = resources.detect_mac()  # whatever this machine has, in the form the server takes
    assert real is None or re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", real)
    assert resources.detect_facts().to_json()["mac"] == real


def test_no_nvml_means_no_gpus() -> None:
    gpus = resources.detect_gpus()  # must not raise on machines without NVIDIA drivers
    assert isinstance(gpus, list)


def test_sample_load() -> None:
    load = resources.sample_load()
    assert set(load) == {"cpu_percent", "memory_used_mb", "load"}
    assert isinstance(load["memory_used_mb"], int) and load["memory_used_mb"] > 0
