import re
from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress

from accounts.services import user_set_email
from billing.models import CreditPack, Wallet
from billing.services import wallet_balance
from tests.fakes.stripe_fake import decode_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def pack():
    return CreditPack.objects.create(name="Starter", credits=500, price_cents=500, stripe_price_id="price_starter")


def test_buying_a_pack_redirects_to_a_checkout_session_with_the_account_and_pack(client, user, pack, stripe_fake):
    client.force_login(user)
    response = client.post(f"/billing/packs/{pack.pk}/buy/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{stripe_fake.base_url}/pay/cs_test_")
    sent = stripe_fake.received("POST", "/v1/checkout/sessions")[0]
    form = decode_form(sent.body)
    assert form["mode"] == "payment"
    assert form["metadata"] == {"flixly_user": str(user.pk), "flixly_pack": str(pack.pk), "credits": "500"}
    assert form["line_items"] == [{"price": "price_starter", "quantity": "1"}]
    assert sent.headers["authorization"] == "Bearer sk_test_fake"


def test_the_stripe_customer_is_created_once(client, user, pack, stripe_fake):
    client.force_login(user)
    client.post(f"/billing/packs/{pack.pk}/buy/")
    client.post(f"/billing/packs/{pack.pk}/buy/")
    assert len(stripe_fake.received("POST", "/v1/customers")) == 1
    assert Wallet.objects.get(user=user).stripe_customer_id.startswith("cus_")


def test_a_pack_without_a_stripe_price_is_priced_inline(client, user, stripe_fake):
    pack = CreditPack.objects.create(name="Inline", credits=100, price_cents=199)
    client.force_login(user)
    client.post(f"/billing/packs/{pack.pk}/buy/")
    form = decode_form(stripe_fake.received("POST", "/v1/checkout/sessions")[0].body)
    assert form["line_items"][0]["price_data"]["unit_amount"] == "199"


def test_the_success_page_grants_nothing(client, user, pack, stripe_fake):
    client.force_login(user)
    client.post(f"/billing/packs/{pack.pk}/buy/")
    assert client.get("/billing/success/?session_id=cs_test_2").status_code == HTTPStatus.OK
    assert wallet_balance(user_id=user.pk) == 0


def test_the_success_page_says_credits_arrived_only_once_they_have(client, user, pack, stripe_fake):
    from billing.services import wallet_credit

    client.force_login(user)
    waiting = client.get("/billing/success/?session_id=cs_test_9").content.decode()
    assert "Stripe is confirming your payment" in waiting
    assert "Thank you" not in waiting and "Payment received" not in waiting
    wallet_credit(user_id=user.pk, amount=500, kind="purchase", idempotency_key="checkout:cs_test_9", reason="pack")
    arrived = client.get("/billing/success/?session_id=cs_test_9").content.decode()
    assert "500 credits were added to your balance" in arrived
    assert "Stripe is confirming" not in arrived


@pytest.mark.parametrize("query", ["", "?session_id=cs_test_fake"])
def test_the_success_page_without_payments_configured_says_so_instead_of_thanking(client, user, settings, query):
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(user)
    response = client.get(f"/billing/success/{query}", follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == "/billing/"
    assert "Payments are not configured" in page
    assert "Thank you" not in page


def test_the_success_page_visited_without_a_checkout_goes_to_billing(client, user, stripe_fake):
    client.force_login(user)
    response = client.get("/billing/success/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/billing/"


def test_paying_on_stripe_grants_the_credits_through_the_webhook(
    live_server, user, pack, stripe_fake, transactional_db
):
    import httpx
    from django.test import Client

    client = Client()
    client.force_login(user)
    stripe_fake.webhook_url = f"{live_server.url}/billing/stripe/webhook/"
    checkout_url = client.post(f"/billing/packs/{pack.pk}/buy/")["Location"]
    paid = httpx.post(checkout_url, follow_redirects=False)
    assert paid.status_code == HTTPStatus.SEE_OTHER
    assert wallet_balance(user_id=user.pk) == 500


def test_a_stripe_outage_is_reported_and_charges_nothing(client, user, pack, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    client.force_login(user)
    response = client.post(f"/billing/packs/{pack.pk}/buy/", follow=True)
    assert b"Stripe could not" in response.content
    assert wallet_balance(user_id=user.pk) == 0


def test_a_stripe_that_hangs_is_given_up_on_quickly(client, user, pack, stripe_fake, monkeypatch):
    # The SDK waits 80 s by default, twice with its retry: eight such clicks held every web thread.
    import time

    from billing import stripe_gateway

    monkeypatch.setattr(stripe_gateway, "STRIPE_TIMEOUT_SECONDS", 0.3)
    stripe_fake.delay_seconds = 5
    client.force_login(user)
    started = time.monotonic()
    response = client.post(f"/billing/packs/{pack.pk}/buy/", follow=True)
    assert time.monotonic() - started < 3
    assert b"Stripe could not" in response.content


def test_without_a_stripe_key_the_billing_page_says_payments_are_not_configured(client, user, pack, settings):
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(user)
    page = client.get("/billing/")
    assert b"Payments are not configured" in page.content
    response = client.post(f"/billing/packs/{pack.pk}/buy/", follow=True)
    assert b"Payments are not configured on this server" in response.content


def test_the_portal_opens_for_an_existing_customer(client, user, stripe_fake):
    client.force_login(user)
    response = client.post("/billing/portal/")
    assert response["Location"].startswith(f"{stripe_fake.base_url}/portal/cus_")


def test_subscribing_starts_a_subscription_checkout(client, user, stripe_fake):
    from accounts.models import Plan

    Plan.objects.filter(slug="pro").update(stripe_price_id="price_pro")
    client.force_login(user)
    client.post("/billing/plans/pro/subscribe/")
    form = decode_form(stripe_fake.received("POST", "/v1/checkout/sessions")[0].body)
    assert form["mode"] == "subscription"
    assert form["line_items"][0]["price"] == "price_pro"


def test_an_existing_subscriber_changes_plan_in_the_portal(client, user, stripe_fake):
    from accounts.models import Plan

    Plan.objects.filter(slug="lite").update(stripe_price_id="price_lite")
    Wallet.objects.create(user=user, stripe_customer_id="cus_1", stripe_subscription_id="sub_1")
    client.force_login(user)
    assert "/portal/cus_1" in client.post("/billing/plans/lite/subscribe/")["Location"]


def test_the_billing_page_shows_balance_packs_plan_ledger_and_chart(client, user, pack, stripe_fake):
    from billing.services import wallet_adjust

    wallet_adjust(user_id=user.pk, amount=42, reason="Welcome gift")
    client.force_login(user)
    page = client.get("/billing/").content.decode()
    for text in ("42", "Starter", "Free", "Welcome gift", "Credits spent per day", "Buy Starter"):
        assert text in page


def test_the_billing_page_shows_this_months_credit_use_per_api_key(client, user, make_key):
    # The seed promised "live credit burn per token": each key's net spend this month, beside its cap.
    from accounts.models import ApiKey
    from billing.models import EntryKind, LedgerEntry

    make_key(user, name="Production")
    make_key(user, name="Staging", monthly_credit_cap=500)
    keys = {key.name: key for key in ApiKey.objects.filter(user=user)}

    def entry(key: str, amount: int, kind: str, n: int) -> None:
        LedgerEntry.objects.create(
            user=user, amount=amount, kind=kind, balance_after=0, idempotency_key=f"t{n}", api_key_id=keys[key].id
        )

    entry("Production", -30, EntryKind.DEBIT, 1)
    entry("Production", -12, EntryKind.DEBIT, 2)
    entry("Production", 12, EntryKind.REFUND, 3)
    entry("Staging", -7, EntryKind.DEBIT, 4)
    client.force_login(user)
    page = client.get("/billing/").content.decode()
    table = page[page.index("Credits by API key") :]
    assert re.search(r"Production.*?>30<", table, re.S)
    assert re.search(r"Staging.*?>7<.*?500", table, re.S)


def test_without_payments_a_customer_is_told_whom_to_ask_not_how_to_configure_the_server(client, user, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.FLIXLY_SUPPORT_EMAIL = "help@flixly.example"
    client.force_login(user)
    page = client.get("/billing/").content.decode()
    assert "Payments are not configured" in page
    assert "STRIPE_SECRET_KEY" not in page and "manage.py" not in page
    assert 'href="mailto:help@flixly.example"' in page


def test_without_payments_staff_are_told_how_to_set_them_up(client, staff_user, settings):
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(staff_user)
    page = client.get("/billing/").content.decode()
    assert "STRIPE_SECRET_KEY" in page and "grant_credits" in page


def _with_a_stripe_customer(client, user, pack) -> str:
    client.force_login(user)
    client.post(f"/billing/packs/{pack.pk}/buy/")
    return Wallet.objects.get(user=user).stripe_customer_id


def test_a_changed_login_address_reaches_the_stripe_customer(
    client, user, pack, stripe_fake, django_capture_on_commit_callbacks
):
    # Stripe mails its receipts and invoices to the customer's address: the old one was kept for good.
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    EmailAddress.objects.create(user=user, email="new@example.com", verified=True)
    customer = _with_a_stripe_customer(client, user, pack)
    client.post("/accounts/reauthenticate/", {"password": "correct horse battery"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/email/", {"action_primary": "", "email": "new@example.com"})
    assert stripe_fake.customers[customer]["email"] == "new@example.com"


def test_an_address_staff_set_reaches_the_stripe_customer(
    client, user, pack, stripe_fake, django_capture_on_commit_callbacks
):
    customer = _with_a_stripe_customer(client, user, pack)
    with django_capture_on_commit_callbacks(execute=True):
        user_set_email(user=user, email="Staff.Set@Example.com")
    assert stripe_fake.customers[customer]["email"] == "staff.set@example.com"


def test_no_stripe_call_for_an_account_that_never_paid(user, stripe_fake, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        user_set_email(user=user, email="new@example.com")
    assert not stripe_fake.requests
