"""Which calls the audit log records (`model/audit_rule.py`), without HTTP."""

from __future__ import annotations

from thresher.model.audit_rule import allowed, recorded


def test_every_change_is_recorded_refusals_too() -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert recorded(method, "kill_job", 200)
        assert recorded(method, "kill_job", 403)
    assert recorded("POST", "register_node", 200) and recorded("POST", "say_goodbye", 200)


def test_reads_are_never_recorded() -> None:
    assert not recorded("GET", "list_jobs", 200)
    assert not recorded("GET", "list_audit", 403)
    assert not recorded("HEAD", "health", 200)


def test_the_agents_hot_path_only_when_refused() -> None:
    for operation in ("ask_for_work", "report_finished", "heartbeat", "append_log"):
        assert not recorded("POST", operation, 200)
        assert not recorded("POST", operation, 409)
        assert recorded("POST", operation, 401) and recorded("POST", operation, 403)


def test_a_refusal_is_not_allowed() -> None:
    assert allowed(200) and allowed(201) and allowed(404) and allowed(409)
    assert not allowed(401) and not allowed(403)
