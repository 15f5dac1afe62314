"""Writes for billing: the wallet and its append-only ledger.

Every balance change is one conditional UPDATE ... RETURNING (never read-modify-write) plus one
ledger row in the same transaction. Idempotency keys are unique per account in the database, so a
refund, a Stripe grant or a sign-up bonus lands at most once however often it is attempted.
"""

import logging
import uuid
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.balance_cache import balance_store_on_commit
from billing.models import BillingAlert, EntryKind, LedgerEntry, Wallet
from flixly_site.db import insert_rows
from flixly_site.errors import ApplicationError, ValidationFailed

logger = logging.getLogger("flixly.billing")

WALLET_TABLE = Wallet._meta.db_table

# One grant, take, price or refund: nothing real comes near a trillion credits, so more is a typo. It
# also keeps every amount and bound passed to the database far inside 64-bit integers.
MAX_CREDITS_PER_MOVEMENT = 10**12
# The balance columns are PostgreSQL bigint (SQLite's integers are as wide).
MAX_BALANCE = 2**63 - 1


class InsufficientCredits(ApplicationError):
    code, status = "insufficient_credits", 402

    @classmethod
    def for_price(cls, price: int, balance: int) -> "InsufficientCredits":
        return cls(
            f"You need at least {price} credit{'s' if price != 1 else ''} for this; your balance is {balance}.",
            details={"price": price, "balance": balance},
        )


class CreditCapReached(ApplicationError):
    code, status = "insufficient_credits", 402


def _refuse_amount(message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"amount": [message]})


def amount_check(*, amount: int) -> None:
    """Refuse, before any query, a movement (either way) bigger than MAX_CREDITS_PER_MOVEMENT."""
    if abs(amount) > MAX_CREDITS_PER_MOVEMENT:
        raise _refuse_amount(f"An amount can be at most {MAX_CREDITS_PER_MOVEMENT:,} credits.")


def _move(user_id: int, delta: int) -> tuple[int, bool] | None:
    """Add delta unless the balance would leave 0..MAX_BALANCE; return (balance, low_balance_alerted)."""
    # Bounds on the old balance, not on balance + delta: PostgreSQL may compute that sum first, and
    # past bigint it is an error rather than a row left alone.
    lowest, highest = max(0, -delta), MAX_BALANCE - max(0, delta)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {WALLET_TABLE} SET balance = balance + %s, version = version + 1, updated_at = %s "  # noqa: S608
            "WHERE user_id = %s AND balance BETWEEN %s AND %s RETURNING balance, low_balance_alerted, version",
            [delta, timezone.now(), user_id, lowest, highest],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    balance_store_on_commit(user_id, int(row[0]), int(row[2]))
    return int(row[0]), bool(row[1])


def _add(user_id: int, amount: int) -> tuple[int, bool]:
    moved = _move(user_id, amount)
    if moved is None:  # the wallet exists and the amount is positive: only the top can refuse it
        raise _refuse_amount(f"This would take the balance past its maximum of {MAX_BALANCE:,} credits.")
    return moved


def wallet_ensure(*, user_id: int) -> None:
    Wallet.objects.get_or_create(user_id=user_id)


def wallet_lock(*, user_id: int) -> Wallet:
    """The account's wallet (made if missing), its row held until the transaction ends, as every debit
    holds it: whatever an account's requests check under it (their count of running jobs, a take's
    balance), they check one after another, charged or free."""
    wallet, _ = Wallet.objects.select_for_update().get_or_create(user_id=user_id)
    return wallet


def wallet_balance(*, user_id: int) -> int:
    """The balance from the database (one indexed lookup, no ORM overhead); mirrored for the header."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT balance, version FROM {WALLET_TABLE} WHERE user_id = %s", [user_id])  # noqa: S608
        row = cursor.fetchone()
    balance, version = (int(row[0]), int(row[1])) if row else (0, 0)  # no wallet yet: as a new one
    balance_store_on_commit(user_id, balance, version)  # never a value a rollback could undo
    return balance


def month_start(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _check_key_cap(api_key_id: uuid.UUID | str, cap: int, amount: int) -> None:
    # Runs after the wallet row is locked by the debit, so concurrent debits of one account queue here.
    net = LedgerEntry.objects.filter(
        api_key_id=api_key_id, created_at__gte=month_start(), kind__in=[EntryKind.DEBIT, EntryKind.REFUND]
    ).aggregate(total=Sum("amount"))["total"]
    spent = -(net or 0)
    if spent + amount > cap:
        raise CreditCapReached(
            f"This API key's monthly credit cap of {cap} would be exceeded ({spent} used this month).",
            details={"monthlyCreditCap": cap, "usedThisMonth": spent, "price": amount},
        )


def wallet_debit(
    *,
    user_id: int,
    amount: int,
    idempotency_key: str,
    reference_type: str = "job",
    reference_id: str = "",
    category: str = "",
    api_key_id: uuid.UUID | str | None = None,
    monthly_cap: int | None = None,
    reason: str = "",
) -> LedgerEntry:
    """Take `amount` credits in the caller's transaction, or raise InsufficientCredits naming the price."""
    if amount <= 0:
        raise ValueError("A debit takes a positive amount.")
    amount_check(amount=amount)
    moved = _move(user_id, -amount)
    if moved is None:
        raise InsufficientCredits.for_price(amount, wallet_balance(user_id=user_id))
    if monthly_cap is not None and api_key_id is not None:
        _check_key_cap(api_key_id, monthly_cap, amount)
    balance, alerted = moved
    entry = LedgerEntry(
        user_id=user_id,
        amount=-amount,
        kind=EntryKind.DEBIT,
        balance_after=balance,
        idempotency_key=idempotency_key,
        reference_type=reference_type,
        reference_id=reference_id,
        category=category,
        api_key_id=api_key_id,
        reason=reason,
    )
    insert_rows(entry)  # on every submit: without the ORM's per-row statement compiling
    if balance < settings.FLIXLY_LOW_BALANCE_THRESHOLD and not alerted:
        _arm_low_balance_email(user_id, balance)
    return entry


def _arm_low_balance_email(user_id: int, balance: int) -> None:
    # The conditional update makes the e-mail go out once per crossing, even under concurrency.
    if Wallet.objects.filter(user_id=user_id, low_balance_alerted=False).update(low_balance_alerted=True):
        from billing.tasks import send_low_balance_email

        transaction.on_commit(lambda: send_low_balance_email.delay(user_id, balance))


def wallet_credit(
    *,
    user_id: int,
    amount: int,
    kind: str,
    idempotency_key: str,
    reference_type: str = "",
    reference_id: str = "",
    category: str = "",
    api_key_id: uuid.UUID | str | None = None,
    reason: str = "",
    staff_user_id: int | None = None,
) -> LedgerEntry | None:
    """Add credits once per idempotency key; None when that key was already used."""
    if amount <= 0:
        raise ValueError("A credit adds a positive amount.")
    amount_check(amount=amount)
    wallet_ensure(user_id=user_id)
    try:
        with transaction.atomic():
            balance, alerted = _add(user_id, amount)
            entry = LedgerEntry.objects.create(
                user_id=user_id,
                amount=amount,
                kind=kind,
                balance_after=balance,
                idempotency_key=idempotency_key,
                reference_type=reference_type,
                reference_id=reference_id,
                category=category,
                api_key_id=api_key_id,
                reason=reason,
                staff_user_id=staff_user_id,
            )
    except IntegrityError:
        return None  # the unique idempotency key: this credit already happened
    if alerted and balance >= settings.FLIXLY_LOW_BALANCE_THRESHOLD:
        Wallet.objects.filter(user_id=user_id).update(low_balance_alerted=False)  # a top-up re-arms the alert
    return entry


def wallet_refund(
    *,
    user_id: int,
    amount: int,
    job_id: uuid.UUID | str,
    category: str = "",
    api_key_id: uuid.UUID | str | None = None,
    reason: str = "",
) -> LedgerEntry | None:
    """Give a job's credits back exactly once: the job id is the refund's idempotency key."""
    return wallet_credit(
        user_id=user_id,
        amount=amount,
        kind=EntryKind.REFUND,
        idempotency_key=f"refund:{job_id}",
        reference_type="job",
        reference_id=str(job_id),
        category=category,
        api_key_id=api_key_id,
        reason=reason or "Job did not complete",
    )


def wallet_take(
    *,
    user_id: int,
    amount: int,
    kind: str,
    idempotency_key: str,
    reference_type: str = "",
    reference_id: str = "",
    reason: str = "",
    staff_user_id: int | None = None,
) -> tuple[LedgerEntry | None, int]:
    """Take up to `amount` without going below zero; return the entry and the shortfall not taken."""
    amount_check(amount=amount)
    with transaction.atomic():
        wallet = wallet_lock(user_id=user_id)
        if LedgerEntry.objects.filter(user_id=user_id, idempotency_key=idempotency_key).exists():
            return None, 0
        taken = min(wallet.balance, amount)
        if taken == 0:
            return None, amount
        balance, _ = _move(user_id, -taken)
        entry = LedgerEntry.objects.create(
            user_id=user_id,
            amount=-taken,
            kind=kind,
            balance_after=balance,
            idempotency_key=idempotency_key,
            reference_type=reference_type,
            reference_id=reference_id,
            reason=reason,
            staff_user_id=staff_user_id,
        )
    return entry, amount - taken


def wallet_adjust(*, user_id: int, amount: int, reason: str, staff_user_id: int | None = None) -> LedgerEntry | None:
    """A staff or operator correction: positive grants, negative takes (never below zero)."""
    if amount == 0 or not reason.strip():
        raise ValueError("An adjustment needs a non-zero amount and a reason.")
    key = f"adjustment:{uuid.uuid4()}"
    if amount > 0:
        return wallet_credit(
            user_id=user_id,
            amount=amount,
            kind=EntryKind.ADJUSTMENT,
            idempotency_key=key,
            reference_type="staff" if staff_user_id else "operator",
            reason=reason,
            staff_user_id=staff_user_id,
        )
    entry, _ = wallet_take(
        user_id=user_id,
        amount=-amount,
        kind=EntryKind.ADJUSTMENT,
        idempotency_key=key,
        reference_type="staff" if staff_user_id else "operator",
        reason=reason,
        staff_user_id=staff_user_id,
    )
    return entry


def wallet_signup_bonus(*, user_id: int) -> LedgerEntry | None:
    bonus = settings.FLIXLY_SIGNUP_BONUS
    if bonus <= 0:
        wallet_ensure(user_id=user_id)
        return None
    return wallet_credit(
        user_id=user_id,
        amount=bonus,
        kind=EntryKind.SIGNUP_BONUS,
        idempotency_key="signup_bonus",
        reason="Welcome credits",
    )


def billing_alert_raise(*, user_id: int | None, message: str, reference: str = "") -> BillingAlert:
    logger.warning("billing alert user=%s reference=%s: %s", user_id, reference, message)
    return BillingAlert.objects.create(user_id=user_id, message=message, reference=reference)
