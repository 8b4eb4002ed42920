"""The users page: an admin adds a user, changes the role and disables the account, all seen by the API."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import csp_violations, login, new_page


def test_an_admin_adds_a_user_changes_the_role_and_disables_it(browser: Any, make_farm: Any) -> None:
    farm = make_farm()
    context, page = new_page(browser)
    try:
        login(page, farm.server_url, farm.admin_token)
        page.click("nav a[href='/users']")
        page.wait_for_url(farm.server_url + "/users")
        page.fill("#add-user input[name=name]", "zed")
        page.select_option("#add-user select[name=role]", "viewer")
        page.fill("#add-user input[name=password]", "zed-password")
        page.click("#add-user button")
        page.wait_for_selector("tr[data-user=zed]")
        assert farm.api.get("/users/zed")["role"] == "viewer"
        page.select_option("tr[data-user=zed] select[name=role]", "wrangler")
        page.click("tr[data-user=zed] form button")
        farm.wait_for(lambda: farm.api.get("/users/zed")["role"] == "wrangler", timeout=10, interval=0.1)
        page.click("tr[data-user=zed] button:has-text('Disable')")
        page.click("#confirm-ok")
        farm.wait_for(lambda: farm.api.get("/users/zed")["disabled"], timeout=10, interval=0.1)
        page.wait_for_selector("tr[data-user=zed] button:has-text('Enable')")
        assert not csp_violations(page)
    finally:
        context.close()
