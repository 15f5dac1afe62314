import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{43}=")


def test_a_user_sets_an_endpoint_copies_its_secret_and_sends_a_test_event(signed_in, receiver):
    page = signed_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    page.wait_for_url("**/settings/webhooks/")
    assert page.get_by_text("No endpoint is set").is_visible()

    page.get_by_label("Endpoint URL:", exact=True).fill(receiver.url)
    page.get_by_role("button", name="Set URL").click()
    secret = page.locator("#new-secret").inner_text()
    assert SECRET.fullmatch(secret)
    page.bring_to_front()  # the clipboard is written only for a page that has the focus
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()  # the write is async
    assert page.evaluate("navigator.clipboard.readText()") == secret

    page.get_by_role("link", name="back to Webhooks").click()
    assert secret not in page.content()
    page.get_by_role("button", name="Send test event").click()
    assert page.get_by_text(re.compile(r"Test event delivered: HTTP 200 in \d+ ms")).is_visible()
    row = page.get_by_role("row").filter(has_text="ping")
    assert row.get_by_text("Succeeded").is_visible() and row.get_by_text(receiver.url).is_visible()
    assert len(receiver.received("POST", "/hooks")) == 1
    page.screenshot(path="/tmp/webhooks-page.png", full_page=True)
