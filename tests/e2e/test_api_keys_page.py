import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY = re.compile(r"flx_live_[0-9a-f]{40}")
SCREENSHOTS = "var/test/screenshots"


def test_a_user_creates_copies_rolls_and_revokes_a_key(signed_in, live_server):
    page = signed_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API Keys").click()
    page.wait_for_url("**/settings/api-keys/")
    page.get_by_label("Name:", exact=True).fill("My laptop")
    page.get_by_role("button", name="Create API Key").click()
    first = page.locator("#new-key").inner_text()
    assert KEY.fullmatch(first)
    page.bring_to_front()  # the clipboard is written only for a page that has the focus
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()  # the write is async
    assert page.evaluate("navigator.clipboard.readText()") == first
    page.screenshot(path=f"{SCREENSHOTS}/key-created.png", full_page=True)

    page.get_by_role("link", name="back to API Keys").click()
    assert first not in page.content()
    page.get_by_role("link", name="Roll").click()
    page.get_by_label("Keep the old secret working for (hours)").fill("1")
    page.get_by_role("button", name="Roll key").click()
    second = page.locator("#new-key").inner_text()
    assert KEY.fullmatch(second) and second != first

    page.get_by_role("link", name="back to API Keys").click()
    page.screenshot(path=f"{SCREENSHOTS}/api-keys.png", full_page=True)
    page.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke key").click()
    assert page.get_by_text("is revoked").is_visible()
    assert page.locator("td .badge.revoked").is_visible()
    page.screenshot(path=f"{SCREENSHOTS}/api-keys-revoked.png", full_page=True)
    table, box = page.locator(".table-wrap table").bounding_box(), page.locator(".table-wrap").bounding_box()
    assert table["width"] <= box["width"]  # a revoked key's empty actions cell no longer widens the table


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_without_javascript_a_key_is_created_and_no_copy_button_shows_that_could_not_work(signed_in, live_server):
    page = signed_in
    page.goto(f"{live_server.url}/settings/api-keys/")
    page.get_by_label("Name:", exact=True).fill("No script")
    page.get_by_role("button", name="Create API Key").click()
    assert KEY.fullmatch(page.locator("#new-key").inner_text())
    expect(page.locator("[data-copy]")).to_be_hidden()
