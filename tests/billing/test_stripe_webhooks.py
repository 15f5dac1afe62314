import itertools
import json
import random
import time
from http import HTTPStatus

import pytest

from accounts.models import Plan
from billing.models import BillingAlert, EntryKind, LedgerEntry, StripeEvent, Wallet
from billing.services import debit_prepare, wallet_balance
from tests.fakes import stripe_signature_header

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"
ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def pro_plan():
    Plan.objects.filter(slug="pro").update(stripe_price_id="price_pro", monthly_credits=2200)
    Plan.objects.filter(slug="lite").update(stripe_price_id="price_lite", monthly_credits=600)
    return Plan.objects.get(slug="pro")


def event(event_type: str, obj: dict, *, created: int | None = None) -> str:
    body = {"id": f"evt_{next(ids)}", "object": "event", "type": event_type, "created": created or int(time.time())}
    return json.dumps({**body, "data": {"object": obj}})


def post(client, payload: str, *, secret: str = SECRET, timestamp: int | None = None):
    signature = stripe_signature_header(payload, secret, timestamp)
    return client.post(
        "/billing/stripe/webhook/",
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )


def paid_session(user, credits: int = 500, session_id: str = "cs_1", status: str = "paid") -> dict:
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": status,
        "customer": "cus_1",
        "client_reference_id": str(user.pk),
        "payment_intent": f"pi_{session_id}",
        "metadata": {"flixly_user": str(user.pk), "flixly_pack": "1", "credits": str(credits)},
    }


def subscription(user, status: str = "active", price: str = "price_pro") -> dict:
    item = {"price": {"id": price}, "current_period_start": 1_700_000_000, "current_period_end": 1_702_592_000}
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "metadata": {"flixly_user": str(user.pk)},
        "items": {"data": [item]},
    }


def test_a_paid_checkout_grants_the_packs_credits(client, user):
    assert post(client, event("checkout.session.completed", paid_session(user))).status_code == HTTPStatus.OK
    entry = LedgerEntry.objects.get(kind=EntryKind.PURCHASE)
    assert (entry.amount, entry.reference_id) == (500, "pi_cs_1")
    assert Wallet.objects.get(user=user).stripe_customer_id == "cus_1"


def test_a_replayed_event_credits_once(client, user):
    payload = event("checkout.session.completed", paid_session(user))
    for _ in range(20):
        assert post(client, payload).status_code == HTTPStatus.OK
    assert wallet_balance(user_id=user.pk) == 500
    assert StripeEvent.objects.count() == 1


def test_completed_and_async_succeeded_for_one_session_credit_once(client, user):
    events = [
        event("checkout.session.completed", paid_session(user, status="unpaid")),
        event("checkout.session.async_payment_succeeded", paid_session(user)),
        event("checkout.session.completed", paid_session(user)),
    ]
    for payload in events * 20:
        post(client, payload)
    assert wallet_balance(user_id=user.pk) == 500


def test_an_unpaid_checkout_waits_for_the_async_payment(client, user):
    post(client, event("checkout.session.completed", paid_session(user, status="unpaid")))
    assert wallet_balance(user_id=user.pk) == 0
    post(client, event("checkout.session.async_payment_succeeded", paid_session(user)))
    assert wallet_balance(user_id=user.pk) == 500


def test_a_bad_signature_is_refused_with_400(client, user):
    response = post(client, event("checkout.session.completed", paid_session(user)), secret="whsec_wrong")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not StripeEvent.objects.exists()


def test_a_missing_signature_is_refused_with_400(client):
    response = client.post("/billing/stripe/webhook/", data="{}", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_without_a_webhook_secret_the_caller_gets_a_generic_503(client, user, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = post(client, event("checkout.session.completed", paid_session(user)))
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {
        "error": {
            "code": "service_unavailable",
            "status": 503,
            "message": "Payments are not configured on this server.",
        }
    }
    assert not StripeEvent.objects.exists()


def test_without_a_webhook_secret_the_operator_gets_an_error_naming_it(client, user, settings, caplog):
    settings.STRIPE_WEBHOOK_SECRET = ""
    post(client, event("checkout.session.completed", paid_session(user)))
    assert [record.levelname for record in caplog.records if "STRIPE_WEBHOOK_SECRET" in record.getMessage()] == [
        "ERROR"
    ]
    assert not [record for record in caplog.records if record.name == "django.request"]  # that line, only once


def test_a_stale_timestamp_is_refused_with_400(client, user):
    payload = event("checkout.session.completed", paid_session(user))
    assert post(client, payload, timestamp=int(time.time()) - 3600).status_code == HTTPStatus.BAD_REQUEST


def test_an_unknown_event_type_is_acknowledged_and_ignored(client):
    assert post(client, event("customer.created", {"id": "cus_9"})).status_code == HTTPStatus.OK
    assert StripeEvent.objects.get().processed_at is not None


def test_a_processing_failure_answers_500_and_is_visible_to_staff(client):
    orphan = {"id": "cs_x", "mode": "payment", "payment_status": "paid", "metadata": {}}
    response = post(client, event("checkout.session.completed", orphan))
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    stored = StripeEvent.objects.get()
    assert stored.processed_at is None
    assert "no Flixly account" in stored.last_error


def test_a_failing_event_raises_one_billing_alert_however_often_stripe_retries_it(client):
    orphan = event("checkout.session.completed", {"id": "cs_x", "mode": "payment", "payment_status": "paid"})
    for _ in range(3):  # Stripe's retries
        assert post(client, orphan).status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    alert = BillingAlert.objects.get()
    stored = StripeEvent.objects.get()
    assert alert.reference == stored.event_id and "checkout.session.completed" in alert.message
    assert stored.last_error.startswith("ValueError: Checkout Session cs_x")  # read by staff, not a repr


def test_subscription_events_set_the_plan(client, user, pro_plan):
    post(client, event("customer.subscription.created", subscription(user)))
    user.refresh_from_db()
    assert user.plan_id == "pro"
    post(
        client,
        event("customer.subscription.updated", subscription(user, price="price_lite"), created=int(time.time()) + 5),
    )
    user.refresh_from_db()
    assert user.plan_id == "lite"
    post(client, event("customer.subscription.deleted", subscription(user, "canceled"), created=int(time.time()) + 10))
    user.refresh_from_db()
    assert user.plan_id == "free"


def test_subscription_events_out_of_order_keep_the_newest_state(client, user, pro_plan):
    now = int(time.time())
    created = event("customer.subscription.created", subscription(user), created=now)
    deleted = event("customer.subscription.deleted", subscription(user, "canceled"), created=now + 60)
    for payload in [deleted, created] * 20:
        post(client, payload)
    user.refresh_from_db()
    assert user.plan_id == "free"


def invoice(user, invoice_id: str = "in_1", price: str = "price_pro", **fields) -> dict:
    line = {"price": {"id": price}}
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": "cus_1",
        "metadata": {"flixly_user": str(user.pk)},
        "lines": {"data": [line]},
        "billing_reason": "subscription_cycle",
        "amount_paid": 2900,
        **fields,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"billing_reason": "subscription_update"},  # a plan switch in the Customer Portal, prorated
        {"billing_reason": "manual"},
        {"billing_reason": "subscription_create", "amount_paid": 0},  # a trial's first invoice
        {"amount_paid": 0},  # paid from the customer's credit balance or a 100% coupon
    ],
)
def test_only_a_paid_invoice_that_starts_or_renews_a_period_grants_monthly_credits(client, user, pro_plan, fields):
    for number in range(3):
        post(client, event("invoice.paid", invoice(user, f"in_{number}", **fields)))
    assert wallet_balance(user_id=user.pk) == 0


def test_the_first_paid_invoice_of_a_subscription_grants_monthly_credits(client, user, pro_plan):
    post(client, event("invoice.paid", invoice(user, billing_reason="subscription_create")))
    assert wallet_balance(user_id=user.pk) == 2200


def test_a_paid_invoice_grants_the_plans_monthly_credits_once(client, user, pro_plan):
    payload = event("invoice.paid", invoice(user))
    for _ in range(20):
        post(client, payload)
    post(client, event("invoice.paid", invoice(user)))  # same invoice, another event id
    assert wallet_balance(user_id=user.pk) == 2200
    post(client, event("invoice.paid", invoice(user, "in_2")))
    assert wallet_balance(user_id=user.pk) == 4400


def test_every_path_replayed_in_random_order_credits_once(client, user, pro_plan):
    now = int(time.time())
    payloads = [
        event("checkout.session.completed", paid_session(user), created=now),
        event("checkout.session.async_payment_succeeded", paid_session(user), created=now + 1),
        event("customer.subscription.created", subscription(user), created=now + 2),
        event("invoice.paid", invoice(user), created=now + 3),
    ] * 20
    random.Random(7).shuffle(payloads)
    for payload in payloads:
        assert post(client, payload).status_code == HTTPStatus.OK
    assert wallet_balance(user_id=user.pk) == 500 + 2200
    user.refresh_from_db()
    assert user.plan_id == "pro"


def refund(user, amount_refunded: int, amount: int = 1000) -> dict:
    return {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_cs_1",
        "amount": amount,
        "amount_refunded": amount_refunded,
        "customer": "cus_1",
    }


def test_a_refunded_charge_claws_back_the_packs_credits(client, user):
    post(client, event("checkout.session.completed", paid_session(user)))
    for _ in range(20):
        post(client, event("charge.refunded", refund(user, 1000)))
    assert wallet_balance(user_id=user.pk) == 0
    assert LedgerEntry.objects.filter(kind=EntryKind.CLAWBACK).count() == 1


def test_a_partial_refund_claws_back_in_proportion(client, user):
    post(client, event("checkout.session.completed", paid_session(user)))
    post(client, event("charge.refunded", refund(user, 500)))
    assert wallet_balance(user_id=user.pk) == 250
    post(client, event("charge.refunded", refund(user, 1000)))
    assert wallet_balance(user_id=user.pk) == 0


def test_a_clawback_never_goes_below_zero_and_flags_the_shortfall(client, user, django_capture_on_commit_callbacks):
    post(client, event("checkout.session.completed", paid_session(user)))
    with django_capture_on_commit_callbacks(execute=True):
        debit_prepare(user_id=user.pk, amount=450, idempotency_key="debit:spent").run()
    post(client, event("charge.refunded", refund(user, 1000)))
    assert wallet_balance(user_id=user.pk) == 0
    alert = BillingAlert.objects.get()
    assert "450 credits" in alert.message


def test_a_refund_before_its_purchase_fails_loudly_and_claws_back_once_stripe_retries_it(client, user):
    # Stripe does not promise order: dropped as "not a pack payment", the refund left the credits in place.
    refunded = event("charge.refunded", refund(user, 1000))
    assert post(client, refunded).status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "matches no credit purchase" in BillingAlert.objects.get().message
    post(client, event("checkout.session.completed", paid_session(user)))
    assert post(client, refunded).status_code == HTTPStatus.OK  # Stripe's retry
    assert wallet_balance(user_id=user.pk) == 0


def test_a_refunded_plan_invoice_claws_back_its_monthly_credits(client, user, pro_plan):
    post(client, event("invoice.paid", invoice(user, payment_intent="pi_in_1")))
    assert wallet_balance(user_id=user.pk) == 2200
    charge = {**refund(user, 1450, amount=2900), "payment_intent": "pi_in_1", "invoice": "in_1"}
    assert post(client, event("charge.refunded", charge)).status_code == HTTPStatus.OK
    assert wallet_balance(user_id=user.pk) == 1100


def dispute(status: str = "needs_response", amount: int = 1000) -> dict:
    return {
        "id": "dp_1",
        "object": "dispute",
        "payment_intent": "pi_cs_1",
        "charge": "ch_1",
        "amount": amount,
        "status": status,
    }


def test_a_dispute_is_flagged_to_staff_and_a_lost_one_claws_back_the_credits(client, user):
    post(client, event("checkout.session.completed", paid_session(user)))
    assert post(client, event("charge.dispute.created", dispute())).status_code == HTTPStatus.OK
    assert wallet_balance(user_id=user.pk) == 500  # it may still be won
    assert "disputed" in BillingAlert.objects.get().message
    for _ in range(3):
        post(client, event("charge.dispute.closed", dispute("lost")))
    assert wallet_balance(user_id=user.pk) == 0
    assert LedgerEntry.objects.get(kind=EntryKind.CLAWBACK).reason == "Payment disputed and lost"


def test_a_won_dispute_keeps_the_credits(client, user):
    post(client, event("checkout.session.completed", paid_session(user)))
    post(client, event("charge.dispute.closed", dispute("won")))
    assert wallet_balance(user_id=user.pk) == 500


@pytest.mark.parametrize(
    "payload",
    [
        "[1, 2, 3]",
        "{not json",
        json.dumps({"type": "charge.refunded", "created": 1, "data": {"object": {}}}),
        json.dumps({"id": "evt_x", "type": "charge.refunded", "data": {"object": {}}}),
        json.dumps({"id": "evt_x", "type": "charge.refunded", "created": "soon", "data": {"object": {}}}),
    ],
)
def test_a_signed_event_of_the_wrong_shape_is_a_400_in_json_and_stores_nothing(client, payload):
    response = post(client, payload)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["code"] == "bad_event"
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize("order", ["as_sent", "reversed"])
def test_subscription_events_of_one_second_apply_in_lifecycle_order(client, user, pro_plan, order):
    # Stripe stamps events to the second: incomplete -> active within one was dropped as "not newer".
    now = int(time.time())
    payloads = [
        event("customer.subscription.created", subscription(user, status="incomplete"), created=now),
        event("customer.subscription.updated", subscription(user, status="active"), created=now),
    ]
    for payload in payloads if order == "as_sent" else payloads[::-1]:
        assert post(client, payload).status_code == HTTPStatus.OK
    user.refresh_from_db()
    assert (user.plan_id, Wallet.objects.get(user=user).subscription_status) == ("pro", "active")


def test_a_renewal_after_a_plan_switch_grants_the_new_plans_credits_not_the_prorated_old_ones(client, user, pro_plan):
    lines = [
        {"price": {"id": "price_pro"}, "amount": -1800, "proration": True},  # "Unused time on Pro": listed first
        {
            "pricing": {"price_details": {"price": "price_lite"}},
            "amount": 560,
            "parent": {"subscription_item_details": {"proration": True}},
        },
        {
            "pricing": {"price_details": {"price": "price_lite"}},
            "amount": 900,
            "parent": {"subscription_item_details": {"proration": False}},
        },
    ]
    post(client, event("invoice.paid", invoice(user, lines={"data": lines}, amount_paid=300)))
    assert wallet_balance(user_id=user.pk) == 600


def test_a_second_subscription_alerts_staff_and_ending_the_other_keeps_the_plan(client, user, pro_plan):
    # Two tabs, two checkouts: both subscriptions bill, and ending one once dropped the account to Free.
    now = int(time.time())
    post(client, event("customer.subscription.created", subscription(user), created=now))
    lite = {**subscription(user, price="price_lite"), "id": "sub_2"}
    post(client, event("customer.subscription.created", lite, created=now + 1))
    assert "two subscriptions" in BillingAlert.objects.get().message
    post(client, event("customer.subscription.deleted", {**subscription(user), "status": "canceled"}, created=now + 2))
    user.refresh_from_db()
    assert user.plan_id == "lite"  # sub_2 still bills
    post(client, event("customer.subscription.deleted", {**lite, "status": "canceled"}, created=now + 3))
    user.refresh_from_db()
    assert user.plan_id == "free"


def test_a_failed_bank_payment_tells_the_customer_and_grants_nothing(
    client, user, mailoutbox, django_capture_on_commit_callbacks
):
    # A delayed payment method completes the checkout unpaid, then fails days later: nothing had told the user.
    post(client, event("checkout.session.completed", paid_session(user, status="unpaid")))
    failed = event("checkout.session.async_payment_failed", paid_session(user, status="unpaid"))
    for _ in range(2):  # a replayed event sends one e-mail
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, failed).status_code == HTTPStatus.OK
    assert wallet_balance(user_id=user.pk) == 0
    [mail] = mailoutbox
    assert mail.to == [user.email]
    assert "500 credits" in mail.body and "did not go through" in mail.body
