"""Stripe webhook events: verified, stored once by event id, processed idempotently.

A replayed or concurrent duplicate event is a no-op (the stored row is locked and marked processed);
each grant also carries its own idempotency key (the Checkout Session, the invoice), so even two
different events about one payment credit it once. Subscription events carry the full object and
are applied only when newer than the last one applied (within one second: no earlier in the
subscription's life), so out-of-order delivery is harmless.
"""

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import FREE_PLAN_SLUG, Plan, User
from accounts.services import user_set_plan
from billing.models import EntryKind, LedgerEntry, StripeEvent, Wallet
from billing.services import billing_alert_raise, wallet_credit, wallet_lock, wallet_take
from billing.stripe_gateway import PaymentsNotConfigured

logger = logging.getLogger("flixly.billing")

ACTIVE_SUBSCRIPTION = {"active", "trialing", "past_due"}


class BadSignature(Exception):
    pass


def _timestamp(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


class BadEvent(Exception):
    """Signed, but not an event: nothing to store or process."""


def stripe_event_verify(*, payload: bytes, signature: str) -> dict:
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise PaymentsNotConfigured()  # the message names no setting: anyone may call the endpoint
    try:
        # The check construct_event makes, without its parsing, which fails on a signed body that is no object.
        stripe.WebhookSignature.verify_header(
            payload.decode(), signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=stripe.Webhook.DEFAULT_TOLERANCE
        )
    except (ValueError, stripe.SignatureVerificationError):
        raise BadSignature("Invalid Stripe signature.") from None
    try:
        event = json.loads(payload)
    except ValueError:
        event = None
    if not _is_event(event):
        raise BadEvent("Not a Stripe event: it needs a string id and type, an integer created and data.object.")
    return event


def _is_event(event: object) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and type(event.get("created")) is int
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    )


def stripe_event_store(*, event: dict) -> StripeEvent:
    row, _ = StripeEvent.objects.get_or_create(
        event_id=event["id"],
        defaults={"type": event["type"], "payload": event, "stripe_created_at": _timestamp(event["created"])},
    )
    return row


def stripe_event_process(*, row: StripeEvent) -> bool:
    """Run the event's handler once; False when it had already been processed."""
    try:
        with transaction.atomic():
            locked = StripeEvent.objects.select_for_update().get(pk=row.pk)
            if locked.processed_at is not None:
                return False
            handler = HANDLERS.get(locked.type)
            if handler is not None:
                handler(locked.payload["data"]["object"], locked.stripe_created_at)
            StripeEvent.objects.filter(pk=row.pk).update(processed_at=timezone.now(), attempts=F("attempts") + 1)
            return True
    except Exception as error:
        # Visible to staff in the admin, and raised as an alert the first time; the 500 makes Stripe retry later.
        described = f"{type(error).__name__}: {error}"[:2000]
        # The first failure only (one conditional UPDATE decides it, even between concurrent retries) raises
        # the alert: Stripe retries a failing event for days.
        failed = {"attempts": F("attempts") + 1, "last_error": described}
        if StripeEvent.objects.filter(pk=row.pk, last_error="").update(**failed):
            message = f"Stripe event {row.event_id} ({row.type}) could not be processed: {described}"
            billing_alert_raise(user_id=None, message=message, reference=row.event_id)
        else:
            StripeEvent.objects.filter(pk=row.pk).update(**failed)
        raise


def _user_for(obj: dict) -> User | None:
    metadata = obj.get("metadata") or {}
    user_id = metadata.get("flixly_user") or obj.get("client_reference_id")
    if user_id and str(user_id).isdigit():
        return User.objects.filter(pk=int(user_id)).first()
    customer = obj.get("customer")
    wallet = Wallet.objects.filter(stripe_customer_id=customer).select_related("user").first() if customer else None
    return wallet.user if wallet else None


def _link_customer(user: User, obj: dict) -> None:
    customer = obj.get("customer")
    if customer:
        Wallet.objects.get_or_create(user=user)
        Wallet.objects.filter(user=user, stripe_customer_id="").update(stripe_customer_id=customer)


def _grant_pack(session: dict) -> None:
    user = _user_for(session)
    credits = int((session.get("metadata") or {}).get("credits") or 0)
    if user is None or credits <= 0:
        raise ValueError(f"Checkout Session {session['id']} has no Flixly account or credits in its metadata.")
    _link_customer(user, session)
    wallet_credit(
        user_id=user.pk,
        amount=credits,
        kind=EntryKind.PURCHASE,
        idempotency_key=f"checkout:{session['id']}",
        reference_type="stripe_payment_intent",
        reference_id=session.get("payment_intent") or session["id"],
        reason=f"Bought {credits} credits",
    )


def on_checkout_completed(session: dict, created: datetime) -> None:
    if session.get("mode") == "subscription":
        user = _user_for(session)
        if user is not None:
            _link_customer(user, session)
        return
    # Delayed payment methods complete the session unpaid; async_payment_succeeded grants later.
    if session.get("payment_status") in ("paid", "no_payment_required"):
        _grant_pack(session)


def on_async_payment_succeeded(session: dict, created: datetime) -> None:
    _grant_pack(session)


def on_async_payment_failed(session: dict, created: datetime) -> None:
    """A bank payment that failed days after checkout: nothing to grant, but the customer should hear of it."""
    from billing.tasks import send_payment_failed_email

    user = _user_for(session)
    credits = int((session.get("metadata") or {}).get("credits") or 0)
    if user is not None and credits > 0:
        transaction.on_commit(lambda: send_payment_failed_email.delay(user.pk, credits), robust=True)


def _subscription_price(subscription: dict) -> str | None:
    items = (subscription.get("items") or {}).get("data") or []
    return items[0]["price"]["id"] if items else None


def _period(subscription: dict) -> tuple[datetime | None, datetime | None]:
    items = (subscription.get("items") or {}).get("data") or [{}]
    start = subscription.get("current_period_start") or items[0].get("current_period_start")
    end = subscription.get("current_period_end") or items[0].get("current_period_end")
    return _timestamp(start), _timestamp(end)


def _plan_for(subscription: dict, deleted: bool) -> Plan:
    if deleted or subscription.get("status") not in ACTIVE_SUBSCRIPTION:
        return Plan.objects.get(slug=FREE_PLAN_SLUG)
    plan = Plan.objects.filter(stripe_price_id=_subscription_price(subscription)).first()
    if plan is None:
        raise ValueError(f"No plan has Stripe price {_subscription_price(subscription)}.")
    return plan


def _on_subscription(subscription: dict, created: datetime, *, deleted: bool) -> None:
    user = _user_for(subscription)
    if user is None:
        raise ValueError(f"Subscription {subscription['id']} belongs to no Flixly account.")
    _link_customer(user, subscription)
    wallet = Wallet.objects.select_for_update().get(user=user)
    status = "canceled" if deleted else subscription.get("status", "")
    if _older(created, status, wallet) or _another_ends(subscription["id"], status, wallet):
        return
    start, end = _period(subscription)
    Wallet.objects.filter(user=user).update(
        stripe_subscription_id="" if deleted else subscription["id"],
        subscription_status=status,
        current_period_start=start,
        current_period_end=end,
        subscription_event_at=created,
    )
    user_set_plan(user=user, plan=_plan_for(subscription, deleted))


# How far along its life a subscription is in each status. Stripe stamps events to the second, and one
# second often holds two (incomplete, then active): within a second, a status no earlier in life wins.
LIFE_STAGE = {"incomplete": 0, "trialing": 1, "active": 1, "past_due": 1, "paused": 1}  # else ended: 2


def _older(created: datetime, status: str, wallet: Wallet) -> bool:
    """Whether the event tells of an earlier state than the one already applied."""
    last = wallet.subscription_event_at
    if last is None or created > last:
        return False
    return created < last or LIFE_STAGE.get(status, 2) < LIFE_STAGE.get(wallet.subscription_status, 2)


def _another_ends(subscription_id: str, status: str, wallet: Wallet) -> bool:
    """Whether the event is of a subscription other than the account's live one: ignored unless it goes live
    itself (two checkouts from two tabs), which staff hear of, as the customer pays twice."""
    current = wallet.stripe_subscription_id
    if not current or subscription_id == current or wallet.subscription_status not in ACTIVE_SUBSCRIPTION:
        return False
    if status not in ACTIVE_SUBSCRIPTION:
        return True
    billing_alert_raise(
        user_id=wallet.user_id,
        message=f"The account has two subscriptions, {current} and {subscription_id}: cancel one in Stripe.",
        reference=subscription_id,
    )
    return False


def on_subscription_changed(subscription: dict, created: datetime) -> None:
    _on_subscription(subscription, created, deleted=False)


def on_subscription_deleted(subscription: dict, created: datetime) -> None:
    _on_subscription(subscription, created, deleted=True)


def _is_proration(line: dict) -> bool:
    # Older API versions flag the line itself; newer ones its parent subscription item.
    item = (line.get("parent") or {}).get("subscription_item_details") or {}
    return bool(line.get("proration") or item.get("proration"))


def _invoice_price(invoice: dict) -> str | None:
    """The plan the invoice pays for: its first line that is no proration (after a plan switch, the old
    plan's "Unused time" line comes first)."""
    for line in (invoice.get("lines") or {}).get("data") or []:
        if _is_proration(line):
            continue
        price = line.get("price") or (line.get("pricing") or {}).get("price_details", {}).get("price")
        if isinstance(price, dict):
            return price.get("id")
        if price:
            return price
    return None


# A subscription's first invoice and each renewal bring a month of credits; a prorated plan switch,
# a manual invoice or a $0 one (a trial, a 100% coupon, the customer's credit balance) brings none.
GRANTING_INVOICES = {"subscription_create", "subscription_cycle"}


def on_invoice_paid(invoice: dict, created: datetime) -> None:
    if invoice.get("billing_reason") not in GRANTING_INVOICES or not invoice.get("amount_paid"):
        return
    price = _invoice_price(invoice)
    plan = Plan.objects.filter(stripe_price_id=price).first() if price else None
    if plan is None or plan.monthly_credits == 0:
        return  # not a plan invoice (or a plan without monthly credits)
    user = _user_for(invoice)
    if user is None:
        raise ValueError(f"Invoice {invoice['id']} belongs to no Flixly account.")
    wallet_credit(
        user_id=user.pk,
        amount=plan.monthly_credits,
        kind=EntryKind.PLAN_GRANT,
        idempotency_key=f"invoice:{invoice['id']}",
        reference_type="stripe_invoice",
        reference_id=invoice["id"],
        reason=f"{plan.name} plan: monthly credits",
    )


def _paid_credits(obj: dict) -> LedgerEntry | None:
    """The credits a charge (or a dispute of it) paid for: a pack, by its payment intent, or a plan's month,
    by its invoice."""
    purchase = LedgerEntry.objects.filter(
        kind=EntryKind.PURCHASE, reference_type="stripe_payment_intent", reference_id=obj.get("payment_intent")
    ).first()
    if purchase is None and obj.get("invoice"):
        purchase = LedgerEntry.objects.filter(
            kind=EntryKind.PLAN_GRANT, reference_type="stripe_invoice", reference_id=obj["invoice"]
        ).first()
    return purchase


def _paid_credits_or_fail(obj: dict, what: str) -> LedgerEntry:
    # Stripe does not promise order: failing, the event is retried (after its purchase lands) and staff see it.
    purchase = _paid_credits(obj)
    if purchase is None:
        raise ValueError(f"{what} of {obj.get('payment_intent')} matches no credit purchase or plan invoice yet.")
    return purchase


def on_charge_refunded(charge: dict, created: datetime) -> None:
    if not charge.get("amount"):
        return  # a $0 charge bought nothing
    purchase = _paid_credits_or_fail(charge, "Refund")
    owed = purchase.amount * charge["amount_refunded"] // charge["amount"]
    # Each refund's event carries the total refunded so far: the step names that total.
    _claw_back(purchase, charge["payment_intent"], owed, step=str(charge["amount_refunded"]), reason="Payment refunded")


def on_dispute_created(dispute: dict, created: datetime) -> None:
    purchase = _paid_credits(dispute)
    at_stake = f"{purchase.amount} credits" if purchase else "no credits we know of"
    billing_alert_raise(
        user_id=purchase.user_id if purchase else None,
        message=f"Payment {dispute.get('payment_intent')} is disputed: {at_stake}, taken back if the dispute is lost.",
        reference=dispute.get("payment_intent") or dispute["id"],
    )


def on_dispute_closed(dispute: dict, created: datetime) -> None:
    if dispute.get("status") != "lost":
        return  # won, or the charge was refunded instead (its own event)
    purchase = _paid_credits_or_fail(dispute, "Lost dispute")
    # A lost dispute returns the whole payment, as a full refund does.
    _claw_back(purchase, dispute["payment_intent"], purchase.amount, step="dispute", reason="Payment disputed and lost")


def _claw_back(purchase: LedgerEntry, payment_intent: str, owed: int, *, step: str, reason: str) -> None:
    """Take back what the payment's reversals owe in all, less what earlier ones took: with the wallet locked
    first, reversals of one payment count one after another and together never take more than owed."""
    wallet_lock(user_id=purchase.user_id)
    taken = -(
        LedgerEntry.objects.filter(
            user_id=purchase.user_id, kind=EntryKind.CLAWBACK, reference_id=payment_intent
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )
    if owed <= taken:
        return
    _, shortfall = wallet_take(
        user_id=purchase.user_id,
        amount=owed - taken,
        kind=EntryKind.CLAWBACK,
        idempotency_key=f"clawback:{payment_intent}:{step}",
        reference_type="stripe_payment_intent",
        reference_id=payment_intent,
        reason=reason,
    )
    if shortfall:
        billing_alert_raise(
            user_id=purchase.user_id,
            message=f"{reason} ({payment_intent}): {shortfall} credits were already spent and could not be taken back.",
            reference=payment_intent,
        )


HANDLERS: dict[str, Callable[[dict, datetime], None]] = {
    "checkout.session.completed": on_checkout_completed,
    "checkout.session.async_payment_succeeded": on_async_payment_succeeded,
    "checkout.session.async_payment_failed": on_async_payment_failed,
    "customer.subscription.created": on_subscription_changed,
    "customer.subscription.updated": on_subscription_changed,
    "customer.subscription.deleted": on_subscription_deleted,
    "invoice.paid": on_invoice_paid,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": on_dispute_created,
    "charge.dispute.closed": on_dispute_closed,
}
