"""One-time login links (server/dashboard/once.py): single use, short-lived, only a hash at rest."""

from __future__ import annotations

from pathlib import Path

from thresher.server.auth import digest
from thresher.server.dashboard import once


def test_a_link_works_once(tmp_path: Path) -> None:
    secret = once.issue(tmp_path, "thr_admin_x")
    assert once.redeem(tmp_path, secret) == digest("thr_admin_x")
    assert once.redeem(tmp_path, secret) is None
    assert list((tmp_path / once.FOLDER).iterdir()) == []


def test_nothing_at_rest_gives_the_secret_or_the_token_away(tmp_path: Path) -> None:
    secret = once.issue(tmp_path, "thr_admin_x")
    [stored] = (tmp_path / once.FOLDER).iterdir()
    assert secret not in stored.name and secret not in stored.read_text()
    assert "thr_admin_x" not in stored.read_text()
    assert stored.stat().st_mode & 0o077 == 0


def test_an_expired_or_made_up_link_is_refused(tmp_path: Path) -> None:
    secret = once.issue(tmp_path, "t", ttl_s=600, now=1000.0)
    assert once.redeem(tmp_path, secret, now=1601.0) is None
    assert once.redeem(tmp_path, "x" * 30) is None
    assert once.redeem(tmp_path, "../../etc/passwd") is None
    assert once.redeem(tmp_path, "") is None


def test_expired_links_are_cleared_when_a_new_one_is_made(tmp_path: Path) -> None:
    once.issue(tmp_path, "t", ttl_s=1, now=1000.0)
    once.issue(tmp_path, "t", ttl_s=600, now=2000.0)
    assert len(list((tmp_path / once.FOLDER).iterdir())) == 1
