"""Bearer tokens: created with high entropy, stored only as SHA-256 digests.

Three kinds: `admin` (people and tools), `enroll` (may only register new nodes) and `node` (one
agent's own credential: it can act only for that node).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from thresher.server.clock import utcnow
from thresher.server.db.queries import tokens as q


@dataclass(frozen=True)
class Caller:
    kind: str
    name: str
    node_id: int | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(kind: str) -> str:
    return f"thr_{kind}_{secrets.token_urlsafe(32)}"


def create_token(conn: Connection, kind: str, name: str, node_id: int | None = None) -> str:
    secret = new_secret(kind)
    conn.execute(q.INSERT_TOKEN, {"digest": digest(secret), "kind": kind, "name": name, "node_id": node_id,
                                  "created_at": utcnow()})
    return secret


def lookup(conn: Connection, secret: str) -> Caller | None:
    row = conn.execute(q.TOKEN_BY_DIGEST, {"digest": digest(secret)}).first()
    return Caller(row.kind, row.name, row.node_id) if row else None


def ensure_bootstrap_tokens(conn: Connection, data_dir: Path) -> dict[str, Path]:
    """On first start create an admin and an enrollment token and save them (mode 0600) in data_dir.

    A token file whose token is no longer known to this database (a new database, same folder) is
    replaced, so the files always hold working credentials.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in ("admin", "enroll"):
        path = data_dir / f"{kind}.token"
        current = path.read_text().strip() if path.exists() else ""
        if not current or lookup(conn, current) is None:
            secret = create_token(conn, kind, "admin" if kind == "admin" else "enrollment")
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secret + "\n")
            tmp.chmod(0o600)
            tmp.replace(path)
        paths[kind] = path
    return paths
