"""Money under concurrency, on real PostgreSQL (row locks and constraints behave as in production)."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.test import Client

from billing.models import EntryKind, LedgerEntry
from billing.services import (
    CreditCapReached,
    InsufficientCredits,
    debit_prepare,
    wallet_adjust,
    wallet_balance,
    wallet_credit,
    wallet_refund,
)
from tests.fakes import stripe_signature_header

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_concurrently(fn, count: int, workers: int = 20) -> list:
    barrier = threading.Barrier(workers)

    def call(index: int):
        if index < workers:
            barrier.wait()
        try:
            return fn(index)
        finally:
            connection.close()  # each thread has its own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, range(count)))


def after_a_lock_holder(hold, then, timeout: float = 10.0):
    """Run `hold` in a transaction that keeps its locks until `then` (in another thread) waits on one of
    them; commit it then, and return what `then` returned."""
    held, release, result = threading.Event(), threading.Event(), []

    def holder() -> None:
        try:
            with transaction.atomic():
                hold()
                held.set()
                release.wait(timeout)
        finally:
            connection.close()

    def waiter() -> None:
        try:
            result.append(then())
        except Exception as error:  # the test reads what it raised
            result.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    assert held.wait(timeout)
    threads.append(threading.Thread(target=waiter))
    threads[1].start()
    deadline = time.monotonic() + timeout
    while not (waited := _someone_waits_on_a_lock()) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(timeout)
    assert waited, "`then` never waited on the holder's locks: the race was not run"
    return result[0]


def _someone_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def test_a_debit_that_waited_on_another_debit_counts_its_spend_against_the_cap(user):
    wallet_adjust(user_id=user.pk, amount=1000, reason="funds")
    key_id = "6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a02"

    def debit(name: str):
        prepared = debit_prepare(user_id=user.pk, amount=10, idempotency_key=name, api_key_id=key_id, monthly_cap=15)
        return lambda: prepared.run()

    def second() -> object:
        with transaction.atomic():
            return debit("second")()

    # The second debit's statement began before the first committed: its own read of the spend missed it.
    assert isinstance(after_a_lock_holder(debit("first"), second), CreditCapReached)
    assert wallet_balance(user_id=user.pk) == 990


def test_500_concurrent_debits_on_100_credits_let_exactly_100_through(user):
    wallet_adjust(user_id=user.pk, amount=100, reason="funds")

    def debit(index: int) -> bool:
        try:
            with transaction.atomic():
                debit_prepare(user_id=user.pk, amount=1, idempotency_key=f"debit:{index}").run()
            return True
        except InsufficientCredits:
            return False

    results = run_concurrently(debit, 500)
    assert results.count(True) == 100
    assert wallet_balance(user_id=user.pk) == 0
    ledger_sum = sum(LedgerEntry.objects.filter(user=user).values_list("amount", flat=True))
    assert ledger_sum == wallet_balance(user_id=user.pk)


def test_concurrent_debits_of_a_capped_key_stop_exactly_at_its_cap(user):
    wallet_adjust(user_id=user.pk, amount=1000, reason="funds")
    key_id = "6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a01"

    def debit(index: int) -> bool:
        try:
            with transaction.atomic():
                debit_prepare(
                    user_id=user.pk, amount=5, idempotency_key=f"debit:{index}", api_key_id=key_id, monthly_cap=15
                ).run()
            return True
        except CreditCapReached:
            return False

    results = run_concurrently(debit, 12, workers=12)
    assert results.count(True) == 3
    entries = LedgerEntry.objects.filter(kind=EntryKind.DEBIT).order_by("id")
    assert [entry.balance_after for entry in entries] == [995, 990, 985]
    assert wallet_balance(user_id=user.pk) == 985


def test_concurrent_refunds_of_one_job_refund_once(user):
    wallet_adjust(user_id=user.pk, amount=50, reason="funds")
    with transaction.atomic():
        debit_prepare(user_id=user.pk, amount=20, idempotency_key="debit:job-1").run()
    results = run_concurrently(lambda _: wallet_refund(user_id=user.pk, amount=20, job_id="job-1"), 40)
    assert sum(r is not None for r in results) == 1
    assert wallet_balance(user_id=user.pk) == 50
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1


STRIPE_SECRET = "whsec_concurrent"


@pytest.fixture
def stripe_secret(settings) -> None:
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET


def post_stripe_event(event_id: str, event_type: str, obj: dict) -> int:
    """Deliver a signed Stripe event as Stripe does, from this thread: the answer's status."""
    payload = json.dumps({"id": event_id, "type": event_type, "created": int(time.time()), "data": {"object": obj}})
    signature = stripe_signature_header(payload, STRIPE_SECRET)
    response = Client().post(
        "/billing/stripe/webhook/",
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )
    return response.status_code


def test_concurrent_duplicate_webhooks_credit_once(user, stripe_secret):
    session = {
        "id": "cs_c",
        "mode": "payment",
        "payment_status": "paid",
        "payment_intent": "pi_c",
        "metadata": {"flixly_user": str(user.pk), "credits": "300"},
    }
    statuses = run_concurrently(lambda _: post_stripe_event("evt_c", "checkout.session.completed", session), 40)
    assert set(statuses) == {200}
    assert wallet_balance(user_id=user.pk) == 300


def test_concurrent_partial_refund_events_claw_back_at_most_what_was_bought(user, stripe_secret):
    wallet_adjust(user_id=user.pk, amount=1000, reason="other credits")
    pack = {"reference_type": "stripe_payment_intent", "reference_id": "pi_r"}
    wallet_credit(user_id=user.pk, amount=300, kind=EntryKind.PURCHASE, idempotency_key="checkout:cs_r", **pack)

    def deliver(index: int) -> int:
        # Stripe sends one charge.refunded per refund, each with the total refunded so far: 55%, 60%... 100%.
        charge = {"payment_intent": "pi_r", "amount": 2000, "amount_refunded": 1000 + 50 * (index + 1)}
        return post_stripe_event(f"evt_r{index}", "charge.refunded", charge)

    assert set(run_concurrently(deliver, 20)) == {200}
    clawed = LedgerEntry.objects.filter(kind=EntryKind.CLAWBACK).values_list("amount", flat=True)
    assert -sum(clawed) == 300 and wallet_balance(user_id=user.pk) == 1000


def test_concurrent_retries_of_a_failing_event_raise_one_alert(stripe_secret):
    from billing.models import BillingAlert

    orphan = {"id": "cs_o", "mode": "payment", "payment_status": "paid"}  # no account: it cannot be processed
    statuses = run_concurrently(
        lambda _: post_stripe_event("evt_o", "checkout.session.completed", orphan), 20, workers=10
    )
    assert set(statuses) == {500}
    assert BillingAlert.objects.filter(reference="evt_o").count() == 1
