"""One-time dashboard login links: `/login?once=SECRET` logs a browser in once, as an admin.

`thresher demo` and `thresher up` print such a link so a new user lands in the dashboard without
copying a token. The CLI makes it where the server keeps its tokens, the data folder, so making one
needs what reading `admin.token` needs anyway, and no API call can make one. At rest there is only the
SHA-256 of the secret (the file's name) with the digest of the admin token it stands for and an expiry
(`TTL_S`, 10 minutes). Redeeming renames the file away first: of two uses racing, one wins, and a used
or expired link is refused like a wrong one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path

from thresher.server.auth import digest

FOLDER = "login-once"
TTL_S = 600.0
_SECRET = re.compile(r"^[A-Za-z0-9_\-]{20,100}$")


def _folder(data_dir: Path) -> Path:
    return data_dir / FOLDER


def issue(data_dir: Path, admin_token: str, ttl_s: float = TTL_S, now: float | None = None) -> str:
    """A new one-time secret standing for `admin_token`; expired ones left over are removed."""
    now = time.time() if now is None else now
    folder = _folder(data_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in folder.iterdir():
        try:
            if json.loads(old.read_text(encoding="utf-8"))["expires"] < now:
                old.unlink(missing_ok=True)
        except (OSError, ValueError, KeyError, TypeError):
            old.unlink(missing_ok=True)
    secret = secrets.token_urlsafe(24)
    path = folder / hashlib.sha256(secret.encode()).hexdigest()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"expires": now + ttl_s, "token_digest": digest(admin_token.strip())}, out)
    return secret


def redeem(data_dir: Path, secret: str, now: float | None = None) -> str | None:
    """The digest of the admin token a good, unused, unexpired secret stands for; the secret is spent."""
    if not _SECRET.match(secret or ""):
        return None
    path = _folder(data_dir) / hashlib.sha256(secret.encode()).hexdigest()
    taken = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        os.rename(path, taken)
    except OSError:
        return None
    try:
        info = json.loads(taken.read_text(encoding="utf-8"))
        expires, token_digest = float(info["expires"]), str(info["token_digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        taken.unlink(missing_ok=True)
    return token_digest if (time.time() if now is None else now) <= expires else None
