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
    assert page.url == f"{live_server.url}/settings/api-keys/"  # it ended in #error-summary, though all went well
    page.bring_to_front()  # the clipboard is written only for a page that has the focus
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()  # the write is async
    assert page.evaluate("navigator.clipboard.readText()") == first
    page.screenshot(path=f"{SCREENSHOTS}/key-created.png", full_page=True)

    page.get_by_role("link", name="back to API Keys").click()
    assert first not in page.content()
    page.get_by_role("link", name=re.compile(r"^Roll My laptop \(flx_live_")).click()  # a screen reader hears which key
    page.get_by_label("Keep the old secret working for (hours)").fill("1")
    page.get_by_role("button", name="Roll key").click()
    second = page.locator("#new-key").inner_text()
    assert KEY.fullmatch(second) and second != first

    page.get_by_role("link", name="back to API Keys").click()
    page.screenshot(path=f"{SCREENSHOTS}/api-keys.png", full_page=True)
    page.get_by_role("link", name=re.compile(r"^Revoke My laptop \(flx_live_")).click()
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
    assert page.url == f"{live_server.url}/settings/api-keys/"


def in_viewport(page, locator) -> bool:
    box, height = locator.bounding_box(), page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def send_a_bad_key_form(page, live_server) -> None:
    page.goto(f"{live_server.url}/settings/api-keys/")
    page.get_by_label("Name:", exact=True).fill("Bad one")
    for scope in page.get_by_role("group", name="Scopes").get_by_role("checkbox").all():
        scope.uncheck()
    page.get_by_label("Allowed IPs:").fill("hello")
    page.get_by_role("button", name="Create API Key").click()
    page.wait_for_load_state()


@pytest.mark.parametrize(
    "javascript", [True, pytest.param(False, marks=pytest.mark.browser_context_args(java_script_enabled=False))]
)
def test_a_refused_key_form_opens_at_a_focused_summary_that_links_to_each_field(
    signed_in, live_server, make_key, django_user_model, javascript
):
    # The page came back scrolled to its top, its errors below the fold and nothing saying so.
    for name in ("Laptop", "CI", "Server"):  # a few keys push the form down the page
        make_key(django_user_model.objects.get(email="someone@example.com"), name=name)
    page = signed_in
    send_a_bad_key_form(page, live_server)
    summary = page.locator("#error-summary")
    assert in_viewport(page, summary)
    if javascript:
        expect(summary).to_be_focused()
    else:
        page.keyboard.press("Tab")  # keyboard navigation starts at the summary
        expect(summary.get_by_role("link").first).to_be_focused()
    page.screenshot(path=f"{SCREENSHOTS}/api-keys-refused-{'js' if javascript else 'nojs'}.png")
    summary.get_by_role("link", name="Scopes: Choose at least one scope.").click()
    assert in_viewport(page, page.get_by_label("Generate"))
    summary.get_by_role("link", name=re.compile("^Allowed IPs: 'hello' is not")).click()
    assert in_viewport(page, page.get_by_label("Allowed IPs:"))


def overflows(page, selector: str) -> bool:
    return page.evaluate(f"[...document.querySelectorAll('{selector}')].some(e => e.scrollWidth > e.clientWidth)")


def test_a_long_unbroken_key_name_wraps_instead_of_pushing_the_actions_off_the_page(
    signed_in, live_server, make_key, django_user_model
):
    # A valid 100-character name without a space widened the Name column: Roll and Revoke sat off to the
    # right, behind a horizontal scroll, on the keys page and beside it on Billing.
    user = django_user_model.objects.get(email="someone@example.com")
    make_key(user, name="x" * 100)
    page = signed_in
    page.goto(f"{live_server.url}/settings/api-keys/")
    assert not overflows(page, ".table-wrap")
    assert in_viewport(page, page.get_by_role("link", name="Revoke"))
    page.goto(f"{live_server.url}/billing/")
    assert not overflows(page, ".table-wrap")
    page.get_by_role("link", name="API Keys").first.click()
    page.get_by_role("link", name="Roll").click()
    assert not overflows(page, "html")
