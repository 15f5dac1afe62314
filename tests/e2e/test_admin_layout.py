"""Every list of the staff console fits a 1280 px laptop screen with both of its sidebars open."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group

from accounts.services import apikey_create, apikey_revoke
from billing.models import BillingAlert, CreditPack, EntryKind, StripeEvent
from billing.services import wallet_adjust, wallet_credit, wallet_refund
from generation.models import AiModel, Job, JobStatus, WebhookDelivery, WebhookEndpoint, WorkerNode
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "var/test/screenshots"
LAPTOP = {"width": 1280, "height": 800}
LONG_EMAIL = "alexandra.konstantinopoulou@verylongcompanyname-international.example.org"
CHARGE = "ch_3PqLz2eZvKYlo2C1aBcDeFgH"  # Stripe's ids: a prefix and 24 characters, nowhere to break
REFUSED = "Not sent: the webhook URL resolves to a private address, which is not allowed."


def fill_the_lists(staff, customer) -> None:
    """A row or two in every list, with the widest values each column really holds."""
    model = AiModel.objects.get(pk="nano-banana-pro")
    job = Job.objects.create(
        user=customer, model=model, type="IMAGE_TO_IMAGE", route=model.route, status=JobStatus.FAILED,
        credits_charged=250, credits_refunded=250,
    )  # fmt: skip
    wallet_credit(
        user_id=customer.pk, amount=2200, kind=EntryKind.PURCHASE, idempotency_key="evt_1",
        reason="Bought 2200 credits", reference_type="stripe_checkout", reference_id="pi_3PqLz2eZvKYlo2C1aBcDeFgH",
    )  # fmt: skip
    wallet_refund(user_id=customer.pk, amount=250, job_id=job.pk, reason="Job did not complete")
    wallet_adjust(
        user_id=customer.pk, amount=-100, reason="Goodwill correction for the failed renders", staff_user_id=staff.pk
    )
    apikey_create(user=customer, name="Production server in Frankfurt (rack 12)")
    apikey_revoke(user=customer, key_id=apikey_create(user=customer, name="CI", mode="test").api_key.id)
    StripeEvent.objects.create(
        event_id="evt_1PqLz2eZvKYlo2C1aBcDeFgH", type="checkout.session.async_payment_succeeded", payload={},
        stripe_created_at=job.created_at, attempts=3, last_error=f"The refund of {CHARGE} matches no purchase yet.",
    )  # fmt: skip
    BillingAlert.objects.create(user=customer, message=f"A refund of {CHARGE} matches no purchase.", reference=CHARGE)
    url = "https://hooks.verylongcompanyname-international.example.org/flixly/receiver?token=abc"
    WebhookEndpoint.objects.create(user=customer, url=url, secret="whsec_x")
    WebhookDelivery.objects.create(
        user=customer, job=job, event="job.failed", url=url, body="{}", status="failed", attempts=4, error=REFUSED
    )
    Group.objects.create(name="Support staff (billing and keys, no credit grants)")
    CreditPack.objects.create(
        name="Studio", credits=6000, price_cents=5000, stripe_price_id="price_1PqLz2eZvKYlo2C1aBcD"
    )
    WorkerNode.objects.create(name="worker@ip-10-0-12-34.eu-central-1.compute.internal", seen_at=job.created_at)


@pytest.fixture
def staff_page(page, live_server, catalog, verified_user):
    """A superuser's browser page, with an account whose long address and records fill the lists."""
    staff = verified_user("staff@example.com")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    fill_the_lists(staff, verified_user(LONG_EMAIL))
    log_in(page, live_server, staff.email)
    page.set_viewport_size(LAPTOP)
    return page


CHANGE_LISTS = sorted(f"{model._meta.app_label}/{model._meta.model_name}" for model in admin.site._registry)


def test_every_model_of_the_console_is_checked():
    assert {"billing/ledgerentry", "accounts/user", "generation/job", "generation/webhookdelivery"} <= set(CHANGE_LISTS)


@pytest.mark.parametrize("name", CHANGE_LISTS)
def test_the_list_shows_every_column_on_a_laptop_screen(staff_page, live_server, name):
    path = f"/admin/{name}/"
    staff_page.goto(f"{live_server.url}{path}")
    staff_page.screenshot(path=f"{SCREENSHOTS}/admin-{name.replace('/', '-')}-list.png")
    assert staff_page.locator("#result_list tbody tr").count() >= 1, f"{path} has no rows to measure"
    scroll_width, client_width = staff_page.locator(".results").evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scroll_width <= client_width, f"{path} is cut off on the right: {scroll_width} > {client_width} px"
    last_column = staff_page.locator("#result_list thead th").last.bounding_box()
    assert last_column["x"] + last_column["width"] <= LAPTOP["width"]


def test_staff_see_why_a_webhook_delivery_failed_in_the_list(staff_page, live_server):
    staff_page.goto(f"{live_server.url}/admin/generation/webhookdelivery/")
    status = staff_page.locator("#result_list td.field-outcome").first
    assert status.inner_text().splitlines() == ["Failed after 4 attempts", REFUSED]
