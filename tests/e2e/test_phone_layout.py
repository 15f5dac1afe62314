"""At phone width (390 px) every page fits the screen: nothing scrolls sideways, the nav and tables show everything."""

import re

import pytest

from billing.models import EntryKind, LedgerEntry
from billing.services import wallet_adjust
from generation.models import AiModel, Job, WebhookDelivery, WebhookEndpoint
from tests.e2e.conftest import contrast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "var/test/screenshots"
PHONE = {"width": 390, "height": 844}
NAV = ["Dashboard", "Generate", "Jobs", "API Keys", "Webhooks", "Billing", "Docs"]


def inside_the_screen(box, width: int = PHONE["width"]) -> bool:
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def assert_fits_the_phone(page, name: str) -> None:
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert scroll_width <= inner_width, f"{name} scrolls sideways: {scroll_width} > {inner_width}"
    cells = page.locator("table td:not(.visually-hidden *)")  # a screen reader's table is off-screen on purpose
    for i in range(cells.count()):
        cell = cells.nth(i)
        if cell.is_visible():
            box = cell.bounding_box()
            assert inside_the_screen(box, inner_width), f"{name}: a table cell is off-screen: {cell.inner_text()!r}"
    page.screenshot(path=f"{SCREENSHOTS}/phone-{name}.png", full_page=True)


@pytest.fixture
def busy_account(signed_in, live_server, catalog, make_key, django_user_model):
    """The signed-in user with a key, jobs in every status, a webhook endpoint with deliveries and some credits."""
    user = django_user_model.objects.get(email="someone@example.com")
    wallet_adjust(user_id=user.pk, amount=500, reason="test funds")
    make_key(user, name="Laptop")
    LedgerEntry.objects.create(user=user, amount=-3, kind=EntryKind.DEBIT, balance_after=497, idempotency_key="d")
    model = AiModel.objects.get(pk="local-image")
    for status in ["completed", "failed", "running", "queued", "canceled"]:
        Job.objects.create(
            user=user, model=model, type="TEXT_TO_IMAGE", params={"prompt": "A lighthouse"}, status=status,
            route=model.route, credits_charged=1, credits_refunded=1 if status == "failed" else 0,
        )  # fmt: skip
    url = "https://hooks.example.com/flixly/an-endpoint-with-a-rather-long-path-that-has-to-wrap"
    WebhookEndpoint.objects.create(user=user, url=url, secret="whsec_test")
    for status, code in [("succeeded", 200), ("failed", 500), ("pending", 503)]:
        WebhookDelivery.objects.create(
            user=user, event="job.completed", url=url, body="{}", status=status, attempts=1, status_code=code
        )
    signed_in.set_viewport_size(PHONE)
    return signed_in


def signed_in_pages(page, live_server) -> dict[str, str]:
    page.goto(f"{live_server.url}/jobs/")
    job_url = page.get_by_role("link", name=re.compile("^Open the")).first.get_attribute("href")
    page.goto(f"{live_server.url}/settings/api-keys/")
    roll_url = page.get_by_role("link", name="Roll").get_attribute("href")
    revoke_url = page.get_by_role("link", name="Revoke").get_attribute("href")
    return {
        "dashboard": "/dashboard/", "generate": "/generate/", "jobs": "/jobs/", "job": job_url,
        "api-keys": "/settings/api-keys/", "roll-key": roll_url, "revoke-key": revoke_url,
        "webhooks": "/settings/webhooks/", "billing": "/billing/", "docs": "/docs/",
        "e-mail": "/accounts/email/", "password": "/accounts/password/change/",
    }  # fmt: skip


def test_every_signed_in_page_fits_a_phone_and_shows_the_whole_nav(busy_account, live_server):
    page = busy_account
    for name, path in signed_in_pages(page, live_server).items():
        page.goto(f"{live_server.url}{path}")
        assert_fits_the_phone(page, name)
        nav = page.get_by_role("navigation", name="Main")
        heights = set()
        for label in NAV:
            link = nav.get_by_role("link", name=label, exact=True)
            box = link.bounding_box()
            assert link.is_visible() and inside_the_screen(box), f"{name}: the {label} nav link is off-screen: {box}"
            heights.add(round(box["height"]))
        assert len(heights) == 1, f"{name}: a nav item wraps inside itself: heights {heights}"


def test_at_320_px_as_at_400_percent_zoom_no_page_scrolls_sideways(busy_account, live_server):
    # The billing chart's hidden table, a long inline code sample in the docs and the job page's two cards
    # (at least 320 px each) were wider than the screen.
    page = busy_account
    page.set_viewport_size({"width": 320, "height": 640})
    for name, path in signed_in_pages(page, live_server).items():
        page.goto(f"{live_server.url}{path}")
        assert_fits_the_phone(page, f"320-{name}")


def test_the_job_tables_show_status_credits_and_the_open_link_on_a_phone(busy_account, live_server):
    page = busy_account
    for path in ["/jobs/", "/dashboard/"]:
        page.goto(f"{live_server.url}{path}")
        opens = page.get_by_role("link", name=re.compile("^Open the"))
        assert opens.count() == 5
        for i in range(opens.count()):
            assert opens.nth(i).is_visible() and inside_the_screen(opens.nth(i).bounding_box())
        for status in ["Completed", "Failed", "Running", "Queued", "Canceled"]:
            badge = page.locator(".badge", has_text=status)
            assert badge.is_visible() and inside_the_screen(badge.bounding_box()), f"{path}: {status} is cut"
    row = page.get_by_role("row").filter(has_text="Failed")
    assert "1 (refunded)" in row.inner_text()  # the Credits column is on screen too


def test_status_badges_have_enough_contrast(busy_account, live_server):
    page = busy_account
    seen = {}
    for path in ["/jobs/", "/settings/webhooks/", "/billing/", "/settings/api-keys/"]:
        page.goto(f"{live_server.url}{path}")
        badges = page.locator(".badge")
        for i in range(badges.count()):
            text, fg, bg = badges.nth(i).evaluate(
                "e => [e.textContent.trim(), getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
            )
            seen[text] = contrast(fg, bg)
    assert {"Completed", "Succeeded", "current", "active", "Failed", "Pending", "Queued"} <= set(seen)
    low = {text: round(ratio, 2) for text, ratio in seen.items() if ratio < 4.5}
    assert not low, f"badges under 4.5:1: {low}"


def test_the_public_pages_fit_a_phone(page, live_server, catalog):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/")
    assert_fits_the_phone(page, "home")
    sign_up = page.get_by_role("link", name="Create a free account").bounding_box()
    docs = page.get_by_role("link", name="Read the docs").bounding_box()
    side_by_side = docs["x"] >= sign_up["x"] + sign_up["width"] + 4
    stacked = docs["y"] >= sign_up["y"] + sign_up["height"] + 4
    assert side_by_side or stacked, f"the hero buttons touch: {sign_up} {docs}"
    nav = page.get_by_role("navigation", name="Main")
    for label in ["Docs", "Log in", "Sign up"]:
        assert inside_the_screen(nav.get_by_role("link", name=label).bounding_box())
    page.goto(f"{live_server.url}/docs/")
    assert_fits_the_phone(page, "docs-public")


def test_the_model_picker_is_wide_enough_for_a_models_name(busy_account, live_server):
    page = busy_account
    page.goto(f"{live_server.url}/generate/")
    assert_fits_the_phone(page, "generate")
    model = page.get_by_label("Model")
    model.select_option("flux-schnell")
    box = model.bounding_box()
    assert inside_the_screen(box)
    text_width = model.evaluate(
        """e => { const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(e).font;
                  return c.measureText(e.selectedOptions[0].text).width; }"""
    )
    assert box["width"] >= text_width + 40, f"the model's name is cut: {text_width} px in a {box['width']} px box"
