"""A debit runs as statements in the caller's round trip (billing.services.Debit): refused, it leaves no
trace; taken, its ledger row carries the new balance. Both database passes."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from billing.models import EntryKind, LedgerEntry, Wallet
from billing.services import (
    CreditCapReached,
    InsufficientCredits,
    debit_prepare,
    key_spent_this_month,
    wallet_adjust,
    wallet_balance,
    wallet_refund,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.parametrize("db_pass", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]),
]
KEY_ID = uuid.UUID("6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a01")


@pytest.fixture
def funded(user):
    wallet_adjust(user_id=user.pk, amount=100, reason="test funds")
    return user


def debits() -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(kind=EntryKind.DEBIT).order_by("id"))


def test_each_ledger_row_carries_the_balance_its_debit_left(funded, db_pass):
    with transaction.atomic():
        for index, amount in enumerate((10, 25, 1)):
            debit_prepare(user_id=funded.pk, amount=amount, idempotency_key=f"debit:{index}").run()
    assert [entry.balance_after for entry in debits()] == [90, 65, 64]
    assert Wallet.objects.get(user=funded).last_entry == str(debits()[-1].public_id)


def test_a_debit_refused_for_credits_writes_nothing_and_leaves_the_transaction_usable(funded, db_pass):
    with transaction.atomic():
        with pytest.raises(InsufficientCredits):
            debit_prepare(user_id=funded.pk, amount=101, idempotency_key="debit:poor").run()
        assert wallet_balance(user_id=funded.pk) == 100  # the caller's transaction goes on
        debit_prepare(user_id=funded.pk, amount=1, idempotency_key="debit:next").run()
    assert [entry.idempotency_key for entry in debits()] == ["debit:next"]


def test_a_refused_debit_whose_key_was_used_is_still_refused_for_credits(funded, db_pass):
    with transaction.atomic():
        debit_prepare(user_id=funded.pk, amount=60, idempotency_key="debit:same").run()
    with pytest.raises(InsufficientCredits), transaction.atomic():
        debit_prepare(user_id=funded.pk, amount=60, idempotency_key="debit:same").run()
    assert wallet_balance(user_id=funded.pk) == 40 and len(debits()) == 1


def test_a_debit_refused_at_the_cap_undoes_the_callers_transaction_even_if_caught(funded, db_pass):
    with transaction.atomic(), pytest.raises(CreditCapReached):
        debit_prepare(user_id=funded.pk, amount=5, idempotency_key="d:cap", api_key_id=KEY_ID, monthly_cap=4).run()
    assert debits() == [] and wallet_balance(user_id=funded.pk) == 100


def test_a_debit_refused_in_a_savepoint_takes_back_only_that_savepoint(funded, db_pass):
    with transaction.atomic():
        debit_prepare(user_id=funded.pk, amount=3, idempotency_key="debit:kept").run()
        with pytest.raises(CreditCapReached), transaction.atomic():
            debit_prepare(user_id=funded.pk, amount=5, idempotency_key="d:cap", api_key_id=KEY_ID, monthly_cap=4).run()
    assert [entry.idempotency_key for entry in debits()] == ["debit:kept"]
    assert wallet_balance(user_id=funded.pk) == 97


def test_the_queries_run_with_a_debit_return_their_rows_as_the_database_was_before_it(funded, db_pass):
    balance = ("SELECT balance FROM billing_wallet WHERE user_id = %s", [funded.pk])
    with transaction.atomic():
        rows = debit_prepare(user_id=funded.pk, amount=7, idempotency_key="debit:seen").run(balance)
    assert rows == [[(100,)]] and wallet_balance(user_id=funded.pk) == 93


@pytest.mark.django_db(transaction=True)
def test_a_debit_outside_a_transaction_is_refused_before_it_writes(funded, db_pass):
    with pytest.raises(TransactionManagementError):
        debit_prepare(user_id=funded.pk, amount=1, idempotency_key="debit:autocommit").run()
    assert debits() == [] and wallet_balance(user_id=funded.pk) == 100


def test_every_balance_change_marks_the_wallet_with_its_ledger_entry(funded, db_pass):
    from billing.services import wallet_refund, wallet_take

    def marked() -> bool:
        newest = LedgerEntry.objects.filter(user=funded).order_by("-id").first()
        return Wallet.objects.get(user=funded).last_entry == str(newest.public_id)

    assert marked()  # the grant
    with transaction.atomic():
        debit_prepare(user_id=funded.pk, amount=30, idempotency_key="debit:job").run()
    assert marked()
    wallet_refund(user_id=funded.pk, amount=30, job_id="job")
    assert marked()
    wallet_take(user_id=funded.pk, amount=5, kind=EntryKind.ADJUSTMENT, idempotency_key="take")
    assert marked()


JANUARY_LAST_MINUTE = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
FEBRUARY_FIRST_MINUTE = datetime(2026, 2, 1, 0, 1, tzinfo=UTC)


def capped_debit(user, job: str, amount: int, key_id: uuid.UUID, category: str = "") -> None:
    """A job's debit with a key capped at 50 credits a month."""
    prepared = debit_prepare(
        user_id=user.pk, amount=amount, idempotency_key=f"debit:{job}", reference_id=job, category=category,
        api_key_id=key_id, monthly_cap=50,
    )  # fmt: skip
    with transaction.atomic():
        prepared.run()


def test_a_refund_counts_toward_the_cap_of_its_debits_month_only(funded, db_pass):
    """A job charged on 31 January and refunded on 1 February gives February's cap no room back."""
    import time_machine

    wallet_adjust(user_id=funded.pk, amount=1000, reason="more funds")
    with time_machine.travel(JANUARY_LAST_MINUTE, tick=False):
        capped_debit(funded, "january-job", 50, KEY_ID)
    with time_machine.travel(FEBRUARY_FIRST_MINUTE, tick=False):
        wallet_refund(user_id=funded.pk, amount=50, job_id="january-job", api_key_id=KEY_ID)
        assert key_spent_this_month(api_key_id=KEY_ID) == 0
        capped_debit(funded, "february-1", 50, KEY_ID)
        with pytest.raises(CreditCapReached):
            capped_debit(funded, "february-2", 50, KEY_ID)
        wallet_refund(user_id=funded.pk, amount=50, job_id="february-1", api_key_id=KEY_ID)
        assert key_spent_this_month(api_key_id=KEY_ID) == 0  # a refund in the month of its debit makes room
        capped_debit(funded, "february-3", 50, KEY_ID)


def test_the_spend_pages_count_a_refund_in_the_month_of_its_debit_as_the_cap_does(funded, db_pass):
    import time_machine

    from accounts.services import apikey_create
    from billing.selectors import spend_by_key, usage_for

    key = apikey_create(user=funded, name="capped", monthly_credit_cap=50).api_key
    with time_machine.travel(JANUARY_LAST_MINUTE, tick=False):
        capped_debit(funded, "january-job", 30, key.id, category="images")
    with time_machine.travel(FEBRUARY_FIRST_MINUTE, tick=False):
        wallet_refund(user_id=funded.pk, amount=30, job_id="january-job", category="images", api_key_id=key.id)
        capped_debit(funded, "february-job", 30, key.id, category="images")
        [row] = spend_by_key(user=funded)
        usage = usage_for(user=funded)
        assert row.spent == key_spent_this_month(api_key_id=key.id) == 30
        assert usage.credits_used == 30 and usage.jobs_by_category["images"] == 1
