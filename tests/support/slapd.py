"""A private, throw-away OpenLDAP server (Debian's `slapd`) for the LDAP login tests.

`SlapdServer` writes a `slapd.conf` of its own in a temporary folder (schemas core, cosine, nis and
inetorgperson; one MDB database under `dc=thresher,dc=test`; the `memberof` overlay, so that users
carry `memberOf` the way Active Directory's do), starts `slapd` in the foreground on two free ports of
127.0.0.1 (`url`: plain LDAP, which also takes StartTLS; `ldaps_url`: LDAP over TLS, with a
certificate for 127.0.0.1 from a private CA, `ca_file`, made with `openssl`) and loads its tree over LDAP as the root DN: `ou=people` and `ou=groups`. Tests add people
(`add_user`, with an SSHA password) and groups (`add_group`: `groupOfNames` with `member`, or
`posixGroup` with `memberUid`) and change memberships (`set_members`) while it runs.

Nothing of the system's slapd is used or touched (no cn=config, no /var/lib/ldap, no port 389).
A missing `slapd` raises `SlapdUnavailable` saying how to install it: the suite installs it through
`scripts/setup.sh`, so a missing server is an environment error, never a reason to skip.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.postgres import free_port

BASE = "dc=thresher,dc=test"
ROOT_DN = f"cn=root,{BASE}"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")


class SlapdUnavailable(RuntimeError):
    """slapd cannot be found or would not start."""


def ssha(password: str) -> str:
    """The `{SSHA}` form slapd checks a simple bind's password against."""
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def find_slapd() -> Path:
    for candidate in (os.environ.get("THRESHER_SLAPD"), shutil.which("slapd"), "/usr/sbin/slapd"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise SlapdUnavailable("OpenLDAP's slapd not found (looked at $THRESHER_SLAPD, $PATH and /usr/sbin/slapd). "
                           "Run ./scripts/setup.sh (it installs the `slapd` package) or set THRESHER_SLAPD.")


class SlapdServer:
    """One slapd in a temporary folder: `start()`, `add_user()`, `add_group()`, `set_members()`, `stop()`."""

    def __init__(self) -> None:
        self.binary = find_slapd()
        self.root = Path(tempfile.mkdtemp(prefix="thresher-slapd-"))
        self.root_password = base64.b32encode(os.urandom(10)).decode()
        self.port = 0
        self.tls_port = 0
        self.ca_file = self.root / "ca.pem"
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_file = self.root / "slapd.log"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def _make_certificate(self) -> None:
        """A private CA (`ca_file`) and the server's certificate for 127.0.0.1 it signed."""
        if shutil.which("openssl") is None:
            raise SlapdUnavailable("the openssl command is needed to make the test LDAP server's certificate")

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=self.root, check=True, capture_output=True, timeout=60)

        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Thresher LDAP CA")
        openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (self.root / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                              "extendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "2", "-extfile", "server.ext")

    def _config(self) -> str:
        schema = Path("/etc/ldap/schema")
        modules = "/usr/lib/ldap"
        lines = [f"include {schema / name}.schema" for name in SCHEMAS]
        lines += [
            f"pidfile {self.root / 'slapd.pid'}",
            f"TLSCACertificateFile {self.ca_file}",
            f"TLSCertificateFile {self.root / 'server.pem'}",
            f"TLSCertificateKeyFile {self.root / 'server.key'}",
            f"argsfile {self.root / 'slapd.args'}",
            f"modulepath {modules}",
            "moduleload back_mdb",
            "moduleload memberof",
            "database mdb",
            f'suffix "{BASE}"',
            f'rootdn "{ROOT_DN}"',
            f"rootpw {self.root_password}",
            f"directory {self.root / 'data'}",
            "maxsize 16777216",
            "dbnosync",  # thrown away at the end: no fsync per write
            "overlay memberof",
            # Passwords: a bind may check them, nobody reads them; everything else: readable by all.
            "access to attrs=userPassword by anonymous auth by self auth by * none",
            "access to * by * read",
        ]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 30.0) -> "SlapdServer":
        (self.root / "data").mkdir(exist_ok=True)
        self._make_certificate()
        conf = self.root / "slapd.conf"
        conf.write_text(self._config())
        for _ in range(5):  # a port taken between free_port() and slapd's bind: try another
            self.port, self.tls_port = free_port(), free_port()
            with open(self.log_file, "ab") as log:
                self._proc = subprocess.Popen(
                    [str(self.binary), "-f", str(conf), "-h", f"{self.url}/ {self.ldaps_url}/", "-d", "0"],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            if self._wait_ready(timeout):
                break
            self._kill()
        else:
            raise SlapdUnavailable(f"slapd would not start\n{self.log_tail()}")
        self._load_tree()
        return self

    def _wait_ready(self, timeout: float) -> bool:
        import ldap3

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False
            try:
                with ldap3.Connection(ldap3.Server(self.url, connect_timeout=1), ROOT_DN, self.root_password,
                                      auto_bind=True, receive_timeout=2):
                    return True
            except ldap3.core.exceptions.LDAPException:
                time.sleep(0.05)
        return False

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "slapd log:\n" + "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no slapd log)"

    # ------------------------------------------------------------------ the tree
    def _admin(self) -> Any:
        import ldap3

        return ldap3.Connection(ldap3.Server(self.url, connect_timeout=5), ROOT_DN, self.root_password,
                                auto_bind=True, receive_timeout=10, raise_exceptions=True)

    def _add(self, dn: str, classes: list[str], attributes: dict[str, Any]) -> None:
        with self._admin() as conn:
            conn.add(dn, classes, attributes)

    def _load_tree(self) -> None:
        self._add(BASE, ["top", "dcObject", "organization"], {"dc": "thresher", "o": "Thresher tests"})
        self._add(PEOPLE, ["top", "organizationalUnit"], {"ou": "people"})
        self._add(GROUPS, ["top", "organizationalUnit"], {"ou": "groups"})

    @staticmethod
    def user_dn(name: str) -> str:
        return f"uid={name},{PEOPLE}"

    def add_user(self, name: str, password: str) -> str:
        """A person (`inetOrgPerson`, `uid=NAME,ou=people,...`) who binds with `password`; their DN."""
        dn = self.user_dn(name)
        self._add(dn, ["top", "inetOrgPerson"], {"uid": name, "cn": name, "sn": name, "userPassword": ssha(password)})
        return dn

    def add_group(self, name: str, members: list[str], *, posix: bool = False) -> str:
        """A group `cn=NAME,ou=groups,...` of these users: `groupOfNames` (`member` DNs) or, with posix,
        `posixGroup` (`memberUid` names). A `groupOfNames` needs a member: an empty one holds the base DN."""
        dn = f"cn={name},{GROUPS}"
        if posix:
            self._add(dn, ["top", "posixGroup"], {"cn": name, "gidNumber": 5000 + len(name),
                                                  **({"memberUid": members} if members else {})})
        else:
            self._add(dn, ["top", "groupOfNames"], {"cn": name, "member": [self.user_dn(m) for m in members] or [BASE]})
        return dn

    def set_members(self, group: str, members: list[str], *, posix: bool = False) -> None:
        """Replace a group's members (the next login sees it)."""
        import ldap3

        dn = f"cn={group},{GROUPS}"
        values = members if posix else ([self.user_dn(m) for m in members] or [BASE])
        with self._admin() as conn:
            conn.modify(dn, {"memberUid" if posix else "member": [(ldap3.MODIFY_REPLACE, values)]})

    def __enter__(self) -> "SlapdServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
