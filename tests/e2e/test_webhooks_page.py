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


HOST_ON_ONE_LINE = """(code, host) => {
  // A range over the host's characters, across the text nodes a <wbr> may split the URL into:
  // a range that crosses a line break has a rectangle on each line.
  const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  const start = code.textContent.indexOf(host), end = start + host.length;
  let seen = 0;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const length = node.textContent.length;
    if (start >= seen && start <= seen + length) range.setStart(node, start - seen);
    if (end >= seen && end <= seen + length) range.setEnd(node, end - seen);
    seen += length;
  }
  return range.getClientRects().length === 1;
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_a_delivery_url_is_never_broken_inside_its_host_and_port(signed_in, live_server, django_user_model, width):
    from generation.models import WebhookDelivery

    user = django_user_model.objects.get(email="someone@example.com")
    for event in ("job.completed", "ping"):
        WebhookDelivery.objects.create(
            user=user, event=event, url="http://127.0.0.1:8905/hook", body="{}", status="succeeded", status_code=200
        )
    page = signed_in
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server.url}/settings/webhooks/")
    for code in page.locator("td.url code").all():
        assert code.evaluate(HOST_ON_ONE_LINE, "127.0.0.1:8905")
    page.locator("table").screenshot(path=f"var/test/screenshots/webhook-deliveries-{width}.png")
