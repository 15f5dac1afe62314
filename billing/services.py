"""Writes for billing: the wallet and its append-only ledger.

Every balance change is one conditional UPDATE ... RETURNING (never read-modify-write) plus one
ledger row in the same transaction. Idempotency keys are unique per account in the database, so a
refund, a Stripe grant or a sign-up bonus lands at most once however often it is attempted.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model, QuerySet
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from billing.balance_cache import BalanceMirror
from billing.models import BillingAlert, CreditPack, EntryKind, LedgerEntry, Wallet
from flixly_site.db import InsertFrom, Lead, Part, Query, Together, run_together
from flixly_site.errors import ApplicationError, ValidationFailed
from flixly_site.events import account_event

logger = logging.getLogger("flixly.billing")

WALLET_TABLE = Wallet._meta.db_table
LEDGER_TABLE = LedgerEntry._meta.db_table

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


MOVED_COLUMNS = ("balance", "low_balance_alerted", "version")  # what a change of the balance returns


def _move_query(user_id: int, delta: int, entry_id: uuid.UUID) -> Query:
    """The conditional UPDATE adding delta unless the balance would leave 0..MAX_BALANCE, marking the wallet
    with the public id of the change's ledger entry; it returns MOVED_COLUMNS, or no row."""
    # Bounds on the old balance, not on balance + delta: PostgreSQL may compute that sum first, and
    # past bigint it is an error rather than a row left alone.
    lowest, highest = max(0, -delta), MAX_BALANCE - max(0, delta)
    sql = (
        f"UPDATE {WALLET_TABLE} SET balance = balance + %s, version = version + 1, updated_at = %s, "  # noqa: S608
        "last_entry = %s WHERE user_id = %s AND balance BETWEEN %s AND %s "
        f"RETURNING {', '.join(MOVED_COLUMNS)}"
    )
    return sql, [delta, timezone.now(), str(entry_id), user_id, lowest, highest]


def _moved(user_id: int, rows: list[tuple]) -> tuple[BalanceMirror, bool] | None:
    """The new balance, to mirror, and low_balance_alerted from _move_query's rows."""
    if not rows:
        return None
    balance, alerted, version = rows[0]
    return BalanceMirror(user_id, int(balance), int(version)), bool(alerted)


def _move(user_id: int, delta: int, entry_id: uuid.UUID) -> tuple[int, bool] | None:
    """Add delta unless the balance would leave 0..MAX_BALANCE; return (balance, low_balance_alerted),
    the new balance mirrored once committed."""
    [rows] = run_together(_move_query(user_id, delta, entry_id))
    moved = _moved(user_id, rows)
    if moved is None:
        return None
    mirror, alerted = moved
    mirror.store_on_commit()
    return mirror.balance, alerted


def _add(user_id: int, amount: int, entry_id: uuid.UUID) -> tuple[int, bool]:
    moved = _move(user_id, amount, entry_id)
    if moved is None:  # the wallet exists and the amount is positive: only the top can refuse it
        raise _refuse_amount(f"This would take the balance past its maximum of {MAX_BALANCE:,} credits.")
    return moved


def wallet_ensure(*, user_id: int) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(user_id=user_id)
    return wallet


def wallet_lock(*, user_id: int) -> Wallet:
    """The account's wallet (made if missing), its row held until the transaction ends, as every debit
    holds it: whatever an account's requests check under it (their count of running jobs, a take's
    balance), they check one after another, charged or free. Its version goes up, as every change under
    the lock that a debit's reads may count must raise it (a free job, say): see Debit."""
    wallet, _ = Wallet.objects.select_for_update().get_or_create(user_id=user_id)
    Wallet.objects.filter(pk=wallet.pk).update(version=F("version") + 1)
    wallet.version += 1
    return wallet


def wallet_balance(*, user_id: int) -> int:
    """The balance from the database (one indexed lookup, no ORM overhead); mirrored for the header."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT balance, version FROM {WALLET_TABLE} WHERE user_id = %s", [user_id])  # noqa: S608
        row = cursor.fetchone()
    balance, version = (int(row[0]), int(row[1])) if row else (0, 0)  # no wallet yet: as a new one
    BalanceMirror(user_id, balance, version).store_on_commit()  # never a value a rollback could undo
    return balance


def month_start(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _key_spend_query(api_key_id: uuid.UUID | str, leaving_out: uuid.UUID | None = None) -> Query:
    """What the key spent this month, net of refunds (as a negative sum, or 0), without the ledger entry
    `leaving_out` (a debit's own, written in the statement that checks its cap). A refund counts in the
    month of its debit: one of last month's job gives this month's cap no room back."""
    field = LedgerEntry._meta.get_field
    sql = (
        f"SELECT COALESCE(SUM(amount), 0) FROM {LEDGER_TABLE} spent "  # noqa: S608
        f"WHERE api_key_id = %s AND created_at >= %s AND (kind = '{EntryKind.DEBIT}' OR kind = '{EntryKind.REFUND}' "
        f"AND EXISTS (SELECT 1 FROM {LEDGER_TABLE} debit WHERE debit.reference_type = spent.reference_type "
        f"AND debit.reference_id = spent.reference_id AND debit.user_id = spent.user_id "
        f"AND debit.kind = '{EntryKind.DEBIT}' AND debit.created_at >= %s))"
    )
    start = field("created_at").get_db_prep_value(month_start(), connection)
    params = [field("api_key_id").get_db_prep_value(api_key_id, connection), start, start]
    if leaving_out is not None:
        sql += " AND public_id <> %s"
        params.append(field("public_id").get_db_prep_value(leaving_out, connection))
    return sql, params


def key_spent_this_month(*, api_key_id: uuid.UUID | str) -> int:
    """The credits the key spent this month, net of refunds: what its monthly cap counts."""
    with connection.cursor() as cursor:
        cursor.execute(*_key_spend_query(api_key_id))
        (net,) = cursor.fetchone()
    return max(0, -int(net))


@dataclass
class Debit:
    """A debit, to run with writes of the caller's in one statement inside its transaction.

    One flixly_site.db Together: the wallet's conditional UPDATE leads, taking the row's lock (concurrent
    debits of one account queue there) and returning the new balance. The ledger row takes that balance
    from it, and neither it nor the caller's rows are written when the UPDATE refused. The reads (the key's
    spend this month when it has a cap, the caller's counts) see the database as it was before the
    UPDATE, perhaps before it waited on the lock. The wallet's version, read with them, tells: every
    holder of the lock raises it (wallet_lock too), so unless it is the version this debit replaced,
    another change committed in between, and the reads are made again, now under the lock. Reads must
    therefore not count what the Together writes (the spend leaves this debit's own entry out)."""

    user_id: int
    amount: int
    entry: LedgerEntry
    monthly_cap: int | None
    move: Lead  # the wallet's UPDATE
    with_move: tuple[Part, ...]  # [the spend query], the ledger row
    mirror: BalanceMirror | None = None  # the new balance, once run

    def run(self, *more: Part, mirror_on_commit: bool = True) -> list[list[tuple]]:
        """Run the debit with `more` (parts of a flixly_site.db.Together: rows inserted only with the
        debit, and queries that must not count those rows, see above) and return the rows of `more`; raise
        InsufficientCredits or CreditCapReached instead when the debit is refused. The new balance is
        mirrored once committed, unless the caller takes `mirror` to send itself."""
        if not connection.in_atomic_block:  # before any write: the UPDATE and its ledger row commit together
            raise TransactionManagementError("A debit runs inside transaction.atomic().")
        parts = (*self.with_move, *(InsertFrom(part, self.move) if isinstance(part, Model) else part for part in more))
        moved, [(seen,)], *rows = run_together(Together(self.move, _version_query(self.user_id), *parts))
        if moved and seen != moved[0][MOVED_COLUMNS.index("version")] - 1:
            rows = _read_again(parts, rows)
        own = len(self.with_move)
        self._settle(moved, rows[:own])
        if mirror_on_commit:
            self.mirror.store_on_commit()
        return rows[own:]

    def _settle(self, moved_rows: list[tuple], rows: list[list[tuple]]) -> None:
        moved = _moved(self.user_id, moved_rows)
        if moved is None:  # nothing was written
            raise InsufficientCredits.for_price(self.amount, wallet_balance(user_id=self.user_id))
        if self.monthly_cap is not None:
            [(net,)] = rows[0]
            self._refuse_past_cap(spent=-int(net))
        self.mirror, alerted = moved
        _alert_if_low(self.user_id, self.mirror.balance, alerted)

    def _refuse_past_cap(self, *, spent: int) -> None:
        if spent + self.amount > self.monthly_cap:
            # The debit and its ledger row are written by now: the caller's whole transaction is undone,
            # even if the caller catches this.
            transaction.set_rollback(True)
            raise CreditCapReached(
                f"This API key's monthly credit cap of {self.monthly_cap} would be exceeded ({spent} used this month).",
                details={"monthlyCreditCap": self.monthly_cap, "usedThisMonth": spent, "price": self.amount},
            )


def _version_query(user_id: int) -> Query:
    return f"SELECT max(version) FROM {WALLET_TABLE} WHERE user_id = %s", [user_id]  # noqa: S608 (one row, NULL without a wallet)


def _read_again(parts: tuple[Part, ...], rows: list[list[tuple]]) -> list[list[tuple]]:
    """`rows` with the queries among `parts` run again, in one statement."""
    queries = [index for index, part in enumerate(parts) if isinstance(part, tuple)]
    fresh = run_together(Together(*(parts[index] for index in queries)))
    rows = list(rows)
    for index, query_rows in zip(queries, fresh, strict=True):
        rows[index] = query_rows
    return rows


def debit_prepare(
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
) -> Debit:
    """A debit of `amount` credits from the account's wallet, with the ledger row `idempotency_key` names
    (unique per account); run it with Debit.run()."""
    if amount <= 0:
        raise ValueError("A debit takes a positive amount.")
    amount_check(amount=amount)
    entry = LedgerEntry(
        user_id=user_id,
        amount=-amount,
        kind=EntryKind.DEBIT,
        balance_after=0,  # the INSERT takes it from the wallet row
        idempotency_key=idempotency_key,
        reference_type=reference_type,
        reference_id=reference_id,
        category=category,
        api_key_id=api_key_id,
        reason=reason,
    )
    cap = monthly_cap if api_key_id is not None else None
    spend = (_key_spend_query(api_key_id, leaving_out=entry.public_id),) if cap is not None else ()
    move = Lead(_move_query(user_id, -amount, entry.public_id), MOVED_COLUMNS)
    return Debit(user_id, amount, entry, cap, move, (*spend, InsertFrom(entry, move, {"balance_after": "balance"})))


def _alert_if_low(user_id: int, balance: int, alerted: bool) -> None:
    """After a debit or a take: the balance crossed under the alert threshold (once per crossing)."""
    if balance < settings.FLIXLY_LOW_BALANCE_THRESHOLD and not alerted:
        _arm_low_balance_email(user_id, balance)


def _arm_low_balance_email(user_id: int, balance: int) -> None:
    # The conditional update makes the e-mail go out once per crossing, even under concurrency.
    if Wallet.objects.filter(user_id=user_id, low_balance_alerted=False).update(low_balance_alerted=True):
        from billing.tasks import send_low_balance_email

        # robust: a broker that is down must not fail the request whose debit has just committed
        transaction.on_commit(lambda: send_low_balance_email.delay(user_id, balance), robust=True)
        threshold = settings.FLIXLY_LOW_BALANCE_THRESHOLD
        account_event(user_id=user_id, event="credits.low", data={"credits": balance, "threshold": threshold})


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
            entry_id = uuid.uuid4()
            balance, alerted = _add(user_id, amount, entry_id)
            entry = LedgerEntry.objects.create(
                public_id=entry_id,
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
    if alerted and balance >= settings.FLIXLY_LOW_BALANCE_THRESHOLD and kind != EntryKind.REFUND:
        # A top-up re-arms the alert; a failed job's refund does not, or each failure would warn again.
        Wallet.objects.filter(user_id=user_id).update(low_balance_alerted=False)
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
        entry_id = uuid.uuid4()
        balance, alerted = _move(user_id, -taken, entry_id)
        entry = LedgerEntry.objects.create(
            public_id=entry_id,
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
        _alert_if_low(user_id, balance, alerted)
    return entry, amount - taken


def wallet_adjust(
    *, user_id: int, amount: int, reason: str, staff_user_id: int | None = None, once: str | None = None
) -> tuple[LedgerEntry | None, int]:
    """A staff or operator correction: positive grants, negative takes (never below zero); returns the entry
    and the credits a take could not take. With `once` (a form's token) a second adjustment under the same
    token writes nothing: (None, 0)."""
    if amount == 0 or not reason.strip():
        raise ValueError("An adjustment needs a non-zero amount and a reason.")
    key = f"adjustment:{once or uuid.uuid4()}"
    written = {"kind": EntryKind.ADJUSTMENT, "idempotency_key": key, "reason": reason, "staff_user_id": staff_user_id}
    written["reference_type"] = "staff" if staff_user_id else "operator"
    if amount > 0:
        return wallet_credit(user_id=user_id, amount=amount, **written), 0
    return wallet_take(user_id=user_id, amount=-amount, **written)


def adjustment_outcome(*, who: object, asked: int, entry: LedgerEntry | None, shortfall: int) -> str:
    """What an adjustment did, in a sentence for the staff member or operator who asked for it."""
    if entry is None and shortfall == 0:
        return "That adjustment was already written, so nothing was done again."
    if entry is None:
        return f"Nothing was taken from {who}: the balance is 0."
    if shortfall:
        taken = -entry.amount
        return f"Only {taken:,} of the {-asked:,} credits asked were taken from {who}: the balance was {taken:,}."
    return f"{asked:+,d} credits for {who}."


def wallet_signup_bonus(*, user_id: int) -> LedgerEntry | None:
    bonus = settings.FLIXLY_SIGNUP_BONUS
    if bonus <= 0:
        wallet_ensure(user_id=user_id)
        return None
    entry = wallet_credit(
        user_id=user_id,
        amount=bonus,
        kind=EntryKind.SIGNUP_BONUS,
        idempotency_key="signup_bonus",
        reason="Welcome credits",
    )
    if entry is not None and entry.balance_after <= settings.FLIXLY_LOW_BALANCE_THRESHOLD:
        # Welcome credits at or under the threshold are low from the start: the first job would otherwise
        # warn a new account. The first top-up above it arms the warning.
        Wallet.objects.filter(user_id=user_id).update(low_balance_alerted=True)
    return entry


def billing_alert_raise(*, user_id: int | None, message: str, reference: str = "") -> BillingAlert:
    logger.warning("billing alert user=%s reference=%s: %s", user_id, reference, message)
    return BillingAlert.objects.create(user_id=user_id, message=message, reference=reference)


def billing_alerts_resolve(*, alerts: QuerySet[BillingAlert]) -> int:
    """Mark the alerts resolved now; one resolved before keeps its time. How many were open."""
    return alerts.filter(resolved_at__isnull=True).update(resolved_at=timezone.now())


DEFAULT_CREDIT_PACKS = (
    {"name": "Starter", "credits": 500, "price_cents": 500, "sort_order": 1},
    {"name": "Creator", "credits": 2200, "price_cents": 2000, "sort_order": 2},
    {"name": "Studio", "credits": 6000, "price_cents": 5000, "sort_order": 3},
)


def credit_packs_seed() -> int:
    """Give a shop that has no credit packs the default ones; returns how many it created."""
    # Keyed on "no packs at all", not pack by pack: staff rename, reprice and delete packs in the admin,
    # and a later seeding (make run does one each start) must neither undo an edit nor bring a pack back.
    if CreditPack.objects.exists():
        return 0
    CreditPack.objects.bulk_create(CreditPack(**pack) for pack in DEFAULT_CREDIT_PACKS)
    return len(DEFAULT_CREDIT_PACKS)
