"""Statements about bearer tokens (`server/auth.py`, `server/users.py`): stored only as SHA-256 digests."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, or_, select, update

from thresher.server.db.tables import tokens, users

# A new token (its digest, kind, name and, for a node's own token, the node; for a person's, the user).
INSERT_TOKEN = insert(tokens)

# Who a token belongs to, by its digest: the token with its user, if it has one (revoked, expired and
# disabled are judged by `auth.caller_from_row`).
_WITH_USER = (select(tokens.c.id, tokens.c.kind, tokens.c.name, tokens.c.node_id, tokens.c.user_id,
                     tokens.c.read_only, tokens.c.expires_at, tokens.c.revoked_at, tokens.c.digest,
                     tokens.c.pool, tokens.c.max_uses, tokens.c.used_count,
                     users.c.name.label("user_name"), users.c.role, users.c.disabled)
              .outerjoin(users, users.c.id == tokens.c.user_id))
TOKEN_BY_DIGEST = _WITH_USER.where(tokens.c.digest == bindparam("digest"))

# The same by the token's id (a dashboard session names its token by id).
TOKEN_BY_ID = _WITH_USER.where(tokens.c.id == bindparam("token_id"))

# A user's id by name.
USER_ID_BY_NAME = select(users.c.id).where(users.c.name == bindparam("name"))

# A new user, answering its id.
INSERT_USER = insert(users).returning(users.c.id)

# A person's tokens (all of them: revoked ones are listed as such), newest first.
_LISTED = select(tokens.c.id, tokens.c.name, tokens.c.kind, tokens.c.created_at, tokens.c.expires_at,
                 tokens.c.read_only, tokens.c.revoked_at, users.c.name.label("user_name")).join(
                     users, users.c.id == tokens.c.user_id)
USER_TOKENS = _LISTED.where(tokens.c.user_id == bindparam("user_id")).order_by(tokens.c.id.desc())

# Every person's tokens (an admin's listing), newest first.
ALL_PERSON_TOKENS = _LISTED.order_by(tokens.c.id.desc())

# One person's token by id.
PERSON_TOKEN = _LISTED.where(tokens.c.id == bindparam("token_id"))

# A token revoked (kept, never accepted again).
REVOKE_TOKEN = (update(tokens).where(tokens.c.id == bindparam("token_id"), tokens.c.revoked_at.is_(None))
                .values(revoked_at=bindparam("now")))

# Enrollment tokens (`server/enrollment.py`), newest first: revoked, expired and used ones are listed as such.
_ENROLL = select(tokens.c.id, tokens.c.name, tokens.c.created_at, tokens.c.expires_at, tokens.c.revoked_at,
                 tokens.c.max_uses, tokens.c.used_count, tokens.c.last_used_at, tokens.c.pool).where(
                     tokens.c.kind == "enroll")
ENROLL_TOKENS = _ENROLL.order_by(tokens.c.id.desc())

# One enrollment token by id.
ENROLL_TOKEN = _ENROLL.where(tokens.c.id == bindparam("token_id"))

# One use of an enrollment token, by compare-and-set: only while it is not revoked and has uses left
# (one row changed: the use is the caller's; none: another registration took the last one). Expiry is
# judged before, by `model/enrollment.refusal`.
USE_ENROLL_TOKEN = (update(tokens).where(
    tokens.c.id == bindparam("token_id"), tokens.c.kind == "enroll", tokens.c.revoked_at.is_(None),
    or_(tokens.c.max_uses.is_(None), tokens.c.used_count < tokens.c.max_uses))
    .values(used_count=tokens.c.used_count + 1, last_used_at=bindparam("now")))
