"""Outbound calls to Stripe (Checkout, Customer Portal, Customers) through the official SDK.

Called outside database transactions: a slow Stripe never holds a lock. STRIPE_API_BASE points the
SDK at another server (a loopback fake in tests).
"""

import logging

import stripe
from django.conf import settings

from accounts.models import Plan, User
from billing.models import CreditPack, Wallet
from flixly_site.errors import ApplicationError, ServiceUnavailable

logger = logging.getLogger("flixly.billing")


class PaymentsNotConfigured(ServiceUnavailable):
    default_message = "Payments are not configured on this server."


def payments_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


# Each call holds a web thread while it waits: the SDK's own 80 s, twice with its retry, let a few clicks
# on a hanging Stripe take every thread of the server.
STRIPE_TIMEOUT_SECONDS = 10


def _client() -> stripe.StripeClient:
    if not payments_enabled():
        raise PaymentsNotConfigured()
    base = settings.STRIPE_API_BASE or stripe.DEFAULT_API_BASE
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base},
        max_network_retries=1,
        http_client=stripe.new_default_http_client(timeout=STRIPE_TIMEOUT_SECONDS),
    )


def _call(what: str, fn, **params):
    try:
        return fn(params=params)
    except stripe.StripeError as error:
        logger.warning("stripe %s failed: %s", what, type(error).__name__)
        raise ServiceUnavailable(f"Stripe could not {what} right now; nothing was charged. Try again.") from None


def customer_for(user: User) -> str:
    wallet, _ = Wallet.objects.get_or_create(user=user)
    if wallet.stripe_customer_id:
        return wallet.stripe_customer_id
    customer = _call(
        "create your customer record",
        _client().v1.customers.create,
        email=user.email,
        metadata={"flixly_user": str(user.pk)},
    )
    # Two tabs racing both create a customer; the first one saved wins and the other stays unused.
    Wallet.objects.filter(user=user, stripe_customer_id="").update(stripe_customer_id=customer.id)
    return Wallet.objects.get(user=user).stripe_customer_id


def customer_email_update(user: User) -> None:
    """Give the account's Stripe customer, if it has one, the account's address: Stripe sends its receipts and
    invoices there. A Stripe error is raised as it is, for the caller's task to retry."""
    customer_id = Wallet.objects.filter(user=user).values_list("stripe_customer_id", flat=True).first()
    if customer_id:
        _client().v1.customers.update(customer_id, params={"email": user.email})


def _pack_line_item(pack: CreditPack) -> dict:
    if pack.stripe_price_id:
        return {"price": pack.stripe_price_id, "quantity": 1}
    return {
        "quantity": 1,
        "price_data": {
            "currency": pack.currency,
            "unit_amount": pack.price_cents,
            "product_data": {"name": f"{pack.name}: {pack.credits} Flixly credits"},
        },
    }


def _checkout(user: User, *, mode: str, line_items: list[dict], metadata: dict, **extra) -> str:
    session = _call(
        "start the checkout",
        _client().v1.checkout.sessions.create,
        mode=mode,
        customer=customer_for(user),
        client_reference_id=str(user.pk),
        line_items=line_items,
        metadata=metadata,
        success_url=f"{settings.SITE_URL}/billing/success/?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{settings.SITE_URL}/billing/?checkout=canceled",
        **extra,
    )
    return session.url


def checkout_for_pack(*, user: User, pack: CreditPack) -> str:
    """A Checkout Session (mode=payment) for one pack; credits come only from the webhook."""
    metadata = {"flixly_user": str(user.pk), "flixly_pack": str(pack.pk), "credits": str(pack.credits)}
    return _checkout(
        user,
        mode="payment",
        line_items=[_pack_line_item(pack)],
        metadata=metadata,
        payment_intent_data={"metadata": metadata},
    )


def checkout_for_plan(*, user: User, plan: Plan) -> str:
    if not plan.stripe_price_id:
        raise ApplicationError(f"The {plan.name} plan has no Stripe price yet; ask staff to set one.")
    metadata = {"flixly_user": str(user.pk), "flixly_plan": plan.slug}
    return _checkout(
        user,
        mode="subscription",
        line_items=[{"price": plan.stripe_price_id, "quantity": 1}],
        metadata=metadata,
        subscription_data={"metadata": metadata},
    )


def portal_for(user: User) -> str:
    session = _call(
        "open the billing portal",
        _client().v1.billing_portal.sessions.create,
        customer=customer_for(user),
        return_url=f"{settings.SITE_URL}/billing/",
    )
    return session.url
