"""Reads for billing: balances, the ledger, usage and spend over time."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import ApiKey, User
from billing.models import SPENDING_KINDS, CreditPack, EntryKind, LedgerEntry, Wallet
from billing.services import month_start

CATEGORIES = ("images", "videos", "audio", "chat")


def ledger_for(*, user: User) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(user=user)


def adjustment_last(*, user_id: int) -> LedgerEntry | None:
    return LedgerEntry.objects.filter(user_id=user_id, kind=EntryKind.ADJUSTMENT).select_related("staff_user").first()


def adjustment_repeated(*, user_id: int, amount: int, reason: str, since: datetime) -> LedgerEntry | None:
    """The newest adjustment of the account since `since` that one of `amount` with `reason` would repeat."""
    # A take stops at zero, so its row may show less than was asked.
    moved = Q(amount=amount) if amount > 0 else Q(amount__gte=amount, amount__lt=0)
    adjustments = LedgerEntry.objects.filter(moved, user_id=user_id, kind=EntryKind.ADJUSTMENT, created_at__gte=since)
    return adjustments.filter(reason__iexact=reason).select_related("staff_user").first()


def packs_for_sale() -> QuerySet[CreditPack]:
    return CreditPack.objects.filter(active=True)


def wallet_for(*, user: User) -> Wallet:
    return Wallet.objects.filter(user=user).first() or Wallet(user=user)


def billing_cycle(wallet: Wallet, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The subscription's current period, or the calendar month without one."""
    now = now or timezone.now()
    if wallet.current_period_start and wallet.current_period_end and wallet.current_period_end > now:
        return wallet.current_period_start, wallet.current_period_end
    start = month_start(now)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


@dataclass(frozen=True)
class Usage:
    credits: int
    cycle_start: datetime
    cycle_end: datetime
    credits_used: int
    jobs_by_category: dict[str, int]
    credits_by_category: dict[str, int]


def spending_since(start: datetime) -> Q:
    """Debits since `start` and their refunds: a refund counts in the period of its debit, as the key's
    monthly cap counts it (billing.services._key_spend_query)."""
    its_debit = LedgerEntry.objects.filter(
        kind=EntryKind.DEBIT,
        created_at__gte=start,
        user_id=OuterRef("user_id"),
        reference_type=OuterRef("reference_type"),
        reference_id=OuterRef("reference_id"),
    )
    return Q(created_at__gte=start) & (Q(kind=EntryKind.DEBIT) | Q(Exists(its_debit), kind=EntryKind.REFUND))


def usage_for(*, user: User) -> Usage:
    wallet = wallet_for(user=user)
    start, end = billing_cycle(wallet)
    rows = (
        LedgerEntry.objects.filter(spending_since(start), user=user)
        .values("category")
        .annotate(
            net=Sum("amount"),
            debits=Count("id", filter=Q(kind=EntryKind.DEBIT)),
            refunds=Count("id", filter=Q(kind=EntryKind.REFUND)),
        )
    )
    jobs = dict.fromkeys(CATEGORIES, 0)
    credits = dict.fromkeys(CATEGORIES, 0)
    for row in rows:
        if row["category"] in jobs:
            jobs[row["category"]] = row["debits"] - row["refunds"]
            credits[row["category"]] = -(row["net"] or 0)
    return Usage(wallet.balance, start, end, sum(credits.values()), jobs, credits)


@dataclass(frozen=True)
class KeySpend:
    key: ApiKey
    spent: int  # net of refunds, this calendar month (what the key's monthly cap counts)


def spend_by_key(*, user: User) -> list[KeySpend]:
    """Each of the account's keys that is live or spent credits this month, with its net spend, most first."""
    rows = (
        LedgerEntry.objects.filter(spending_since(month_start()), user=user, api_key_id__isnull=False)
        .values("api_key_id")
        .annotate(net=Sum("amount"))
    )
    spent = {row["api_key_id"]: max(0, -(row["net"] or 0)) for row in rows}
    keys = ApiKey.objects.filter(user=user).filter(Q(revoked_at__isnull=True) | Q(id__in=list(spent)))
    found = [KeySpend(key, spent.get(key.id, 0)) for key in keys]
    return sorted(found, key=lambda row: (-row.spent, row.key.name))


def spend_per_day(*, user: User, days: int = 30) -> list[tuple[date, int]]:
    """Net credits spent on each of the last `days` days, oldest first, zero-filled."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    # From the first day's midnight: a bound on the time itself, which the ledger's index serves.
    since = timezone.make_aware(datetime.combine(first, time.min))
    rows = (
        LedgerEntry.objects.filter(user=user, created_at__gte=since, kind__in=SPENDING_KINDS)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(net=Sum("amount"))
    )
    spent = {row["day"]: -(row["net"] or 0) for row in rows}
    return [(first + timedelta(days=n), max(0, spent.get(first + timedelta(days=n), 0))) for n in range(days)]


def checkout_purchase(*, user: User, session_id: str) -> LedgerEntry | None:
    """The credits a Checkout Session brought this account, once its webhook has been processed."""
    return LedgerEntry.objects.filter(user=user, idempotency_key=f"checkout:{session_id}").first()
