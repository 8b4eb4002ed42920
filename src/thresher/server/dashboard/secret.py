"""The server secret that signs dashboard session cookies, kept in a file in the server's data folder.

Not in the database: whoever reads a database backup must not be able to make a session. The file
(`session.secret`, mode 0600, 32 random bytes as hex) is made on first start; `thresher secret
rotate` writes a new one, which ends every session. A running server notices at once: it looks at
the file's identity (inode, mtime, size) whenever it checks a cookie and reads it again when that
changed. Server processes that share a data folder share the secret; processes on other machines
need a copy of the file.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path

log = logging.getLogger("thresher.server.sessions")

SECRET_FILE = "session.secret"
SECRET_BYTES = 32


class SecretFileError(RuntimeError):
    """The secret file exists but does not hold a secret."""


def secret_path(data_dir: Path) -> Path:
    return Path(data_dir) / SECRET_FILE


def _write_new(path: Path, *, replace: bool) -> None:
    """Write a fresh secret next to `path` (0600 from the start) and move it into place: readers
    never see a half-written file. Without `replace`, an existing file wins (two servers starting
    at once in one folder agree on one secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_bytes(SECRET_BYTES).hex() + "\n")
        os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < SECRET_BYTES:
        raise SecretFileError(f"{path} does not hold a session secret: run `thresher secret rotate` to make one")
    return key


def rotate_secret(data_dir: Path) -> Path:
    """Replace the data folder's session secret with a new one (every session ends); its path."""
    path = secret_path(data_dir)
    _write_new(path, replace=True)
    return path


class SessionSecret:
    """The current signing key: from the data folder's file (read again when the file changes), or,
    without a folder, a random key that lives as long as this object (tests, tools, benches)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._identity: tuple[int, int, int] | None = None
        self._key = secrets.token_bytes(SECRET_BYTES)
        if path is not None:
            if not path.exists():
                _write_new(path, replace=False)
            self._reload()

    @classmethod
    def in_folder(cls, data_dir: Path) -> SessionSecret:
        """The data folder's secret, made now if it has none."""
        return cls(secret_path(data_dir))

    def _reload(self) -> None:
        assert self.path is not None
        stat = self.path.stat()
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if identity != self._identity:
            self._key = _read(self.path)
            self._identity = identity

    def key(self) -> bytes:
        """The key to sign and check with now."""
        if self.path is None:
            return self._key
        with self._lock:
            try:
                self._reload()
            except (OSError, SecretFileError) as exc:  # a broken file must not end the server: keep the last key
                log.warning("cannot read the session secret (%s); still using the last one read", exc)
            return self._key
