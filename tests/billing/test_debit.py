"""A debit runs as statements in the caller's round trip (billing.services.Debit): refused, it leaves no
trace; taken, its ledger row carries the new balance. Both database passes."""

import uuid

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from billing.models import EntryKind, LedgerEntry, Wallet
from billing.services import CreditCapReached, InsufficientCredits, debit_prepare, wallet_adjust, wallet_balance

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
