"""Statements about dashboard sessions and failed logins (`server/dashboard/session.py`,
`server/user_sessions.py`, `server/logins.py`)."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, func, insert, select, update

from thresher.server.db.tables import login_failures, sessions, tokens, users

# A new session, answering its id.
INSERT_SESSION = insert(sessions).returning(sessions.c.id)

# Sessions long over deleted (none lives past its lifetime; a listing keeps the last weeks).
PRUNE_SESSIONS = delete(sessions).where(sessions.c.last_seen < bindparam("before"))

# One session with its user and, for a login with a token, that token (judged by `session.judge`).
SESSION_BY_ID = (select(sessions.c.id, sessions.c.key, sessions.c.user_id, sessions.c.token_id, sessions.c.ended_at,
                        users.c.name.label("user_name"), users.c.role, users.c.disabled,
                        tokens.c.id.label("found_token_id"), tokens.c.kind.label("token_kind"),
                        tokens.c.read_only, tokens.c.expires_at, tokens.c.revoked_at)
                 .join(users, users.c.id == sessions.c.user_id)
                 .outerjoin(tokens, tokens.c.id == sessions.c.token_id)
                 .where(sessions.c.id == bindparam("session_id")))

# A session's last use stamped.
TOUCH_SESSION = update(sessions).where(sessions.c.id == bindparam("session_id")).values(last_seen=bindparam("now"))

# One session ended (logging out).
END_SESSION = (update(sessions).where(sessions.c.id == bindparam("session_id"), sessions.c.ended_at.is_(None))
               .values(ended_at=bindparam("now"), end_reason=bindparam("reason")))

# Every open session of a user ended, but one (`keep`: the caller's own, or 0).
END_USER_SESSIONS = (update(sessions).where(sessions.c.user_id == bindparam("owner_id"), sessions.c.ended_at.is_(None),
                                            sessions.c.id != bindparam("keep"))
                     .values(ended_at=bindparam("now"), end_reason=bindparam("reason")))

# A user's sessions, newest first, with the user's name (an admin's listing).
USER_SESSIONS = (select(sessions, users.c.name.label("user_name")).join(users, users.c.id == sessions.c.user_id)
                 .where(sessions.c.user_id == bindparam("user_id")).order_by(sessions.c.id.desc())
                 .limit(bindparam("limit")))

# How many sessions each user has open (not ended, used since `since`).
OPEN_SESSION_COUNTS = (select(sessions.c.user_id, func.count().label("n"))
                       .where(sessions.c.ended_at.is_(None), sessions.c.last_seen >= bindparam("since"))
                       .group_by(sessions.c.user_id))

# A failed login.
INSERT_FAILURE = insert(login_failures)

# The failures counted against a user name since a moment.
USER_FAILURES = select(login_failures.c.at).where(login_failures.c.user_name == bindparam("name"),
                                                  login_failures.c.at >= bindparam("since"))

# The failures counted against an address since a moment.
ADDRESS_FAILURES = select(login_failures.c.at).where(login_failures.c.address == bindparam("address"),
                                                     login_failures.c.at >= bindparam("since"))

# Every failure since a moment, by user name (the users listing's locks).
FAILURES_SINCE = select(login_failures.c.user_name, login_failures.c.at).where(
    login_failures.c.at >= bindparam("since"))

# A user name's failures forgotten (an admin lifts its lock).
CLEAR_USER_FAILURES = delete(login_failures).where(login_failures.c.user_name == bindparam("name"))

# Failures too old to matter deleted.
PRUNE_FAILURES = delete(login_failures).where(login_failures.c.at < bindparam("before"))
