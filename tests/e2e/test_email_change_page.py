import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = "var/test/screenshots"


def test_a_new_address_takes_the_password_again_then_waits_for_its_confirmation(signed_in, live_server):
    page = signed_in
    page.goto(f"{live_server.url}/accounts/email/")
    page.get_by_label("Change to").fill("new@example.com")
    page.get_by_role("button", name="Change Email").click()

    page.wait_for_url("**/accounts/reauthenticate/**")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.screenshot(path=f"{SCREENSHOTS}/reauthenticate.png", full_page=True)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()

    page.wait_for_url("**/accounts/email/")
    assert EmailAddress.objects.filter(email="new@example.com", verified=False).exists()
