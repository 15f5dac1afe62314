"""The main pages work under the site's Content-Security-Policy: the browser blocks nothing on any of them."""

import re

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from billing.models import CreditPack
from billing.services import wallet_adjust
from generation.models import Job
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JOB_URL = re.compile(r".*/jobs/[0-9a-f-]{36}/$")
LOADS_METADATA = """media => media.readyState >= 1 || new Promise((resolve) => {
  media.addEventListener("loadedmetadata", () => resolve(true));
  media.addEventListener("error", () => resolve(false));
})"""


@pytest.fixture
def violations(page):
    """Chromium reports each thing the policy blocked as a console error naming the policy."""
    seen: list[str] = []

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            seen.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.append(f"{page.url}: page error: {error}"))
    return seen


@pytest.fixture
def staff_member(page, live_server, verified_user, settings, catalog):
    settings.SITE_URL = live_server.url  # output links point at the live server
    user = verified_user("staff@example.com")
    user.is_staff = user.is_superuser = True
    user.save()
    wallet_adjust(user_id=user.pk, amount=25, reason="test funds")
    CreditPack.objects.create(name="Starter", credits=500, price_cents=500, stripe_price_id="price_starter")
    log_in(page, live_server, user.email)
    return user


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response.ok, url
    assert "script-src 'self'" in response.headers["content-security-policy"], url
    page.wait_for_load_state("networkidle")


def generate(page, live_server, model: str, prompt: str) -> None:
    visit(page, f"{live_server.url}/generate/")
    page.get_by_label("Model").select_option(model)
    page.locator("#id_prompt").fill(prompt)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_url(JOB_URL)
    expect(page.locator("#job-status")).to_have_text("Completed")


def test_the_main_pages_and_the_admin_run_with_nothing_blocked(page, live_server, staff_member, violations):
    generate(page, live_server, "local-image", "A lighthouse at dusk")
    # Waits in the page's own promises: wait_for_function's polling evaluates a string, which the policy refuses.
    assert page.locator(".output img").evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    generate(page, live_server, "local-music", "A calm piano piece")
    assert page.locator(".output audio").evaluate(LOADS_METADATA)

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    visit(page, f"{live_server.url}/settings/api-keys/")
    page.get_by_label("Name:", exact=True).fill("My laptop")
    page.get_by_role("button", name="Create API Key").click()
    page.bring_to_front()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()

    EmailAddress.objects.create(user=staff_member, email="new@example.com", verified=False, primary=False)
    job = Job.objects.filter(user=staff_member).first()
    for path in (
        "/dashboard/",
        "/jobs/",
        "/settings/webhooks/",
        "/billing/",
        "/docs/",
        "/accounts/email/",  # a pending change: allauth's page holds a hidden form
        "/admin/",
        "/admin/generation/job/",
        f"/admin/generation/job/{job.pk}/change/",
        f"/admin/accounts/user/{staff_member.pk}/change/",
        f"/admin/billing/wallet/{staff_member.pk}/change/",
        f"/admin/billing/wallet/{staff_member.pk}/adjust/",
        "/admin/generation/aimodel/local-image/change/",
    ):
        visit(page, live_server.url + path)
    assert violations == []


def test_the_api_docs_page_runs_under_its_own_policy_missing_only_redocs_cdn_logo(page, live_server, violations):
    visit(page, f"{live_server.url}/api/docs")
    expect(page.get_by_role("heading", name=re.compile("^Flixly API"))).to_be_visible()
    assert [v for v in violations if "https://cdn.redoc.ly/" not in v] == []
