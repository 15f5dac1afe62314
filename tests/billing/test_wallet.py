from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone

from billing.models import EntryKind, LedgerEntry, Wallet
from billing.services import (
    MAX_BALANCE,
    MAX_CREDITS_PER_MOVEMENT,
    CreditCapReached,
    InsufficientCredits,
    debit_prepare,
    wallet_adjust,
    wallet_balance,
    wallet_credit,
    wallet_refund,
    wallet_signup_bonus,
)
from flixly_site.errors import ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded(user):
    wallet_adjust(user_id=user.pk, amount=100, reason="test funds")
    mail.outbox.clear()
    return user


def debit(user, amount, key="job-1", **kwargs) -> LedgerEntry:
    prepared = debit_prepare(user_id=user.pk, amount=amount, idempotency_key=f"debit:{key}", reference_id=key, **kwargs)
    with transaction.atomic():
        prepared.run()
    return prepared.entry


def test_a_debit_lowers_the_balance_and_writes_a_ledger_row(funded):
    entry = debit(funded, 12, category="videos")
    assert wallet_balance(user_id=funded.pk) == 88
    assert (entry.amount, entry.kind, entry.balance_after, entry.category) == (-12, EntryKind.DEBIT, 88, "videos")


def test_a_debit_over_the_balance_is_refused_and_names_the_price(funded):
    with pytest.raises(InsufficientCredits) as refused:
        debit(funded, 101)
    assert refused.value.status == 402
    assert "101 credits" in refused.value.message
    assert wallet_balance(user_id=funded.pk) == 100


def test_an_account_without_a_wallet_cannot_spend(user):
    with pytest.raises(InsufficientCredits):
        debit(user, 1)


def test_a_refund_happens_exactly_once(funded):
    debit(funded, 30)
    assert wallet_refund(user_id=funded.pk, amount=30, job_id="job-1") is not None
    assert wallet_refund(user_id=funded.pk, amount=30, job_id="job-1") is None
    assert wallet_balance(user_id=funded.pk) == 100
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1


def test_a_grant_with_a_used_idempotency_key_is_a_no_op(user):
    for _ in range(3):
        wallet_credit(user_id=user.pk, amount=10, kind=EntryKind.PURCHASE, idempotency_key="checkout:cs_1")
    assert wallet_balance(user_id=user.pk) == 10


def test_a_negative_adjustment_never_goes_below_zero(funded):
    entry, shortfall = wallet_adjust(user_id=funded.pk, amount=-250, reason="chargeback")
    assert (entry.amount, shortfall) == (-100, 150)
    assert wallet_balance(user_id=funded.pk) == 0


def test_the_ledger_always_sums_to_the_balance(funded):
    debit(funded, 40, key="a")
    wallet_refund(user_id=funded.pk, amount=40, job_id="a")
    debit(funded, 25, key="b")
    total = sum(LedgerEntry.objects.filter(user=funded).values_list("amount", flat=True))
    assert total == wallet_balance(user_id=funded.pk) == 75


def test_the_signup_bonus_is_granted_once(user, settings):
    settings.FLIXLY_SIGNUP_BONUS = 50
    wallet_signup_bonus(user_id=user.pk)
    wallet_signup_bonus(user_id=user.pk)
    assert wallet_balance(user_id=user.pk) == 50


def test_signing_up_grants_the_bonus(client, settings):
    settings.FLIXLY_SIGNUP_BONUS = 50
    password = "Quiet-Lake-4512"
    client.post("/accounts/signup/", {"email": "bonus@example.com", "password1": password, "password2": password})
    assert Wallet.objects.get(user__email="bonus@example.com").balance == 50


def test_welcome_credits_at_the_threshold_warn_only_after_a_top_up(user, settings, django_capture_on_commit_callbacks):
    settings.FLIXLY_SIGNUP_BONUS = settings.FLIXLY_LOW_BALANCE_THRESHOLD = 50
    wallet_signup_bonus(user_id=user.pk)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        debit_prepare(user_id=user.pk, amount=5, idempotency_key="first-job").run()
    assert mail.outbox == []  # 45 of the 50 welcome credits: not news to a new account
    wallet_credit(user_id=user.pk, amount=100, kind=EntryKind.PURCHASE, idempotency_key="pack")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        debit_prepare(user_id=user.pk, amount=100, idempotency_key="big-job").run()
    assert len(mail.outbox) == 1 and "45 left" in mail.outbox[0].subject


def test_crossing_the_low_balance_threshold_sends_one_email(funded, settings, django_capture_on_commit_callbacks):
    settings.FLIXLY_LOW_BALANCE_THRESHOLD = 50
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        debit_prepare(user_id=funded.pk, amount=60, idempotency_key="d1").run()
        debit_prepare(user_id=funded.pk, amount=10, idempotency_key="d2").run()
    assert len(mail.outbox) == 1
    assert "40 left" in mail.outbox[0].subject


@pytest.mark.parametrize("stripe_key", ["sk_test_x", ""])
def test_the_low_balance_email_offers_a_top_up_only_where_credits_can_be_bought(
    funded, settings, django_capture_on_commit_callbacks, stripe_key
):
    settings.FLIXLY_LOW_BALANCE_THRESHOLD, settings.STRIPE_SECRET_KEY = 50, stripe_key
    settings.FLIXLY_SUPPORT_EMAIL = "help@flixly.example"
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        debit_prepare(user_id=funded.pk, amount=60, idempotency_key="d1").run()
    body = mail.outbox[0].body
    if stripe_key:
        assert "Top up or change plan here:" in body
    else:  # as the billing page says: nothing to buy here, ask the people who run it
        assert "Top up" not in body and "cannot be bought on this server" in body and "help@flixly.example" in body


def test_a_top_up_re_arms_the_low_balance_email(funded, settings, django_capture_on_commit_callbacks):
    settings.FLIXLY_LOW_BALANCE_THRESHOLD = 50
    with django_capture_on_commit_callbacks(execute=True):
        debit(funded, 60, key="a")
        wallet_adjust(user_id=funded.pk, amount=100, reason="top-up")
        debit(funded, 120, key="b")
    assert len(mail.outbox) == 2


def test_a_staff_take_crossing_the_threshold_sends_the_low_balance_email_once(
    funded, settings, django_capture_on_commit_callbacks
):
    settings.FLIXLY_LOW_BALANCE_THRESHOLD = 50
    with django_capture_on_commit_callbacks(execute=True):
        wallet_adjust(user_id=funded.pk, amount=-70, reason="duplicate grant")
        wallet_adjust(user_id=funded.pk, amount=-10, reason="another correction")
    assert len(mail.outbox) == 1 and "30 left" in mail.outbox[0].subject


def test_a_refund_does_not_re_arm_the_low_balance_email_a_top_up_does(
    funded, settings, django_capture_on_commit_callbacks
):
    settings.FLIXLY_LOW_BALANCE_THRESHOLD = 98
    with django_capture_on_commit_callbacks(execute=True):
        for job in ("a", "b", "c"):  # each job fails and is refunded: the balance is back to 100 each time
            debit(funded, 5, key=job)
            wallet_refund(user_id=funded.pk, amount=5, job_id=job)
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        wallet_adjust(user_id=funded.pk, amount=10, reason="top-up")
        debit(funded, 20, key="d")
    assert len(mail.outbox) == 2


def test_a_keys_monthly_cap_stops_spending_past_it(funded):
    debit(funded, 30, key="a", api_key_id="6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a01", monthly_cap=50)
    with pytest.raises(CreditCapReached) as refused:
        debit(funded, 30, key="b", api_key_id="6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a01", monthly_cap=50)
    assert "monthly credit cap of 50" in refused.value.message
    assert wallet_balance(user_id=funded.pk) == 70


def test_a_refund_frees_room_under_the_cap(funded):
    key = "6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a01"
    debit(funded, 50, key="a", api_key_id=key, monthly_cap=50)
    wallet_refund(user_id=funded.pk, amount=50, job_id="a", api_key_id=key)
    debit(funded, 50, key="b", api_key_id=key, monthly_cap=50)


def test_the_cap_resets_each_month(funded):
    key = "6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a01"
    debit(funded, 50, key="a", api_key_id=key, monthly_cap=50)
    with time_machine.travel(timezone.now() + timedelta(days=32)):
        debit(funded, 10, key="b", api_key_id=key, monthly_cap=50)


@pytest.mark.parametrize("amount", [MAX_CREDITS_PER_MOVEMENT + 1, -(MAX_CREDITS_PER_MOVEMENT + 1), 10**20])
def test_an_adjustment_above_the_maximum_is_refused_naming_the_amount(funded, amount):
    with pytest.raises(ValidationFailed) as refused:
        wallet_adjust(user_id=funded.pk, amount=amount, reason="typo")
    assert list(refused.value.details) == ["amount"]
    assert wallet_balance(user_id=funded.pk) == 100
    assert LedgerEntry.objects.filter(user=funded).count() == 1


def test_a_debit_above_the_maximum_is_refused_naming_the_amount(funded):
    with pytest.raises(ValidationFailed) as refused:
        debit(funded, 10**20)
    assert list(refused.value.details) == ["amount"]
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_credit_past_the_largest_balance_is_refused_and_changes_nothing(funded):
    Wallet.objects.filter(user=funded).update(balance=MAX_BALANCE - 5)
    with pytest.raises(ValidationFailed) as refused:
        wallet_credit(user_id=funded.pk, amount=6, kind=EntryKind.PURCHASE, idempotency_key="checkout:cs_big")
    assert list(refused.value.details) == ["amount"]
    assert wallet_balance(user_id=funded.pk) == MAX_BALANCE - 5
    assert not LedgerEntry.objects.filter(idempotency_key="checkout:cs_big").exists()


def test_a_credit_up_to_the_largest_balance_lands(funded):
    Wallet.objects.filter(user=funded).update(balance=MAX_BALANCE - 5)
    entry = wallet_credit(user_id=funded.pk, amount=5, kind=EntryKind.PURCHASE, idempotency_key="checkout:cs_top")
    assert entry.balance_after == wallet_balance(user_id=funded.pk) == MAX_BALANCE


@pytest.mark.django_db(transaction=True)  # a real commit runs the e-mail's hook
def test_a_low_balance_email_the_broker_cannot_take_does_not_fail_the_debit(funded, settings, monkeypatch):
    from kombu.exceptions import OperationalError

    from billing import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("broker unavailable")

    settings.FLIXLY_LOW_BALANCE_THRESHOLD = 50
    monkeypatch.setattr(tasks.send_low_balance_email, "delay", broker_down)
    with transaction.atomic():  # as a submit's: the e-mail is queued once this commits
        debit_prepare(user_id=funded.pk, amount=60, idempotency_key="d-broker-down").run()
    assert Wallet.objects.get(user_id=funded.pk).balance == 40
