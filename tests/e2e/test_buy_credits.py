import pytest

from billing.models import CreditPack
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = "var/test/screenshots"


def test_a_user_buys_a_pack_and_sees_the_new_balance(page, live_server, verified_user, stripe_fake, settings):
    settings.SITE_URL = live_server.url
    stripe_fake.webhook_url = f"{live_server.url}/billing/stripe/webhook/"
    CreditPack.objects.create(name="Starter", credits=500, price_cents=500, stripe_price_id="price_starter")
    log_in(page, live_server, verified_user("buyer@example.com").email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    assert page.locator("#balance").inner_text() == "0"

    page.get_by_role("button", name="Buy Starter").click()
    page.wait_for_url(f"{stripe_fake.base_url}/pay/**")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url("**/billing/success/**")
    # The fake delivers the signed webhook before it redirects back, as Stripe usually has by then.
    assert page.get_by_role("heading", name="Credits added").is_visible()
    assert page.get_by_text("500 credits were added to your balance").is_visible()

    page.get_by_role("link", name="Back to billing").click()
    assert page.locator("#balance").inner_text() == "500"
    assert page.get_by_role("cell", name="Purchase").is_visible()
    page.screenshot(path=f"{SCREENSHOTS}/billing.png", full_page=True)
