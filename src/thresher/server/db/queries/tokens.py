"""Statements about bearer tokens (`server/auth.py`): stored only as SHA-256 digests."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select

from thresher.server.db.tables import tokens

# A new token (its digest, kind, name and, for a node's own token, the node).
INSERT_TOKEN = insert(tokens)

# Who a token belongs to, by its digest.
TOKEN_BY_DIGEST = select(tokens.c.kind, tokens.c.name, tokens.c.node_id).where(tokens.c.digest == bindparam("digest"))
