"""The rule for enrollment tokens (`model/enrollment.py`) without a server: states, the refusal the agent
logs, and which pool wins at registration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from thresher.model.enrollment import EnrollState, EnrollToken, refusal, registration_pool, state

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _token(**facts: object) -> EnrollToken:
    return EnrollToken(**{"name": "room b", "revoked_at": None, "expires_at": None, "max_uses": None,  # type: ignore[arg-type]
                          "used_count": 0, **facts})


def test_a_reusable_token_enrols_until_revoked_or_expired() -> None:
    assert state(_token(used_count=40), NOW) == EnrollState.ACTIVE and refusal(_token(used_count=40), NOW) is None
    expired = _token(expires_at=NOW - timedelta(seconds=1))
    assert state(expired, NOW) == EnrollState.EXPIRED
    assert "expired at 2026-12-01 11:59:59 UTC" in str(refusal(expired, NOW))
    assert state(_token(expires_at=NOW + timedelta(seconds=1)), NOW) == EnrollState.ACTIVE


def test_a_one_time_token_is_used_after_one_registration() -> None:
    assert refusal(_token(max_uses=1), NOW) is None
    used = _token(max_uses=1, used_count=1)
    assert state(used, NOW) == EnrollState.USED
    reason = str(refusal(used, NOW))
    assert "'room b'" in reason and "one-time" in reason and "enroll-token create" in reason


def test_a_used_token_still_serves_its_agent_asking_again_for_a_lost_answer() -> None:
    used = _token(max_uses=1, used_count=1)
    assert refusal(used, NOW, reissue=True) is None
    assert refusal(_token(max_uses=1, used_count=1, revoked_at=NOW), NOW, reissue=True) is not None
    assert refusal(_token(expires_at=NOW), NOW, reissue=True) is not None


def test_revoked_is_said_first() -> None:
    token = _token(max_uses=1, used_count=1, revoked_at=NOW, expires_at=NOW - timedelta(days=1))
    assert state(token, NOW) == EnrollState.REVOKED
    assert "was revoked at 2026-12-01 12:00:00 UTC" in str(refusal(token, NOW))


def test_the_tokens_pool_wins_and_sticks() -> None:
    assert registration_pool("enroll", "gpu", "cpu") == "gpu"
    assert registration_pool("enroll", None, "cpu") == "cpu"
    assert registration_pool("enroll", None, None) is None       # a new node joins `default`
    assert registration_pool("admin", None, "cpu") == "cpu"
    # the node's own credential: enrolled into a token's pool, the agent's flag does not move it
    assert registration_pool("node", "gpu", "cpu") is None
    assert registration_pool("node", None, "cpu") == "cpu"
