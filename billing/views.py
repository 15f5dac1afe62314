import logging
from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.log import log_response
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import Plan
from billing import stripe_gateway
from billing.models import Wallet
from billing.selectors import checkout_purchase, ledger_for, packs_for_sale, spend_by_key, spend_per_day, wallet_for
from billing.stripe_events import BadEvent, BadSignature, stripe_event_process, stripe_event_store, stripe_event_verify
from flixly_site.errors import ApplicationError, error_json
from flixly_site.forms import post_only_form
from flixly_site.pagination import dashboard_page

logger = logging.getLogger("flixly.billing")
CHART_HEIGHT = 120
CHART_DAYS = 30


def _bar(index: int, day: date, spent: int, peak: int) -> dict:
    height = round(spent / (peak or 1) * CHART_HEIGHT)
    return {"day": day, "spent": spent, "height": height, "y": CHART_HEIGHT - height, "x": index * 20}


def _chart(user) -> dict:
    days = spend_per_day(user=user, days=CHART_DAYS)
    peak_day, peak = max(days, key=lambda day: day[1])  # the first of the days with the most
    return {
        "bars": [_bar(index, day, spent, peak) for index, (day, spent) in enumerate(days)],
        "total": sum(spent for _, spent in days),
        "peak": peak,
        "peak_day": peak_day,
        "first": days[0][0],
        "last": days[-1][0],
        "days": CHART_DAYS,
        "height": CHART_HEIGHT,
    }


SUBSCRIPTION_NOTES = {
    "past_due": "The last payment failed: update your card in the customer portal, or the plan ends.",
    "incomplete": "Waiting for the first payment.",
    "canceled": "Subscription canceled.",
    "unpaid": "Subscription unpaid: the plan has ended.",
}


def subscription_note(wallet: Wallet) -> str:
    """What the billing page says of the subscription: a renewal date only while it is live."""
    status = wallet.subscription_status
    if status in ("active", "trialing") and wallet.current_period_end:
        return f"Subscription {status}, renews {wallet.current_period_end:%Y-%m-%d}."
    return SUBSCRIPTION_NOTES.get(status, f"Subscription {status}." if status else "")


@login_required
def billing(request: HttpRequest) -> HttpResponse:
    wallet = wallet_for(user=request.user)
    ledger, older = dashboard_page(request, ledger_for(user=request.user), limit=20, rows_named="credit movements")
    context = {
        "nav": "billing",
        "wallet": wallet,
        "subscription_note": subscription_note(wallet),
        "plan": request.user.plan,
        "plans": Plan.objects.all(),
        "packs": packs_for_sale(),
        "ledger": ledger,
        "ledger_older": older,
        "ledger_paged": bool(request.GET.get("cursor")),
        "chart": _chart(request.user),
        "key_spend": spend_by_key(user=request.user),
        "payments_enabled": stripe_gateway.payments_enabled(),
        "checkout_canceled": request.GET.get("checkout") == "canceled",
    }
    return render(request, "billing/billing.html", context)


def _to_stripe(request: HttpRequest, start_checkout) -> HttpResponse:
    try:
        return redirect(start_checkout())
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("billing")


@login_required
@post_only_form("billing")
def buy_pack(request: HttpRequest, pack_id: int) -> HttpResponse:
    pack = get_object_or_404(packs_for_sale(), pk=pack_id)
    return _to_stripe(request, lambda: stripe_gateway.checkout_for_pack(user=request.user, pack=pack))


@login_required
@post_only_form("billing")
def subscribe(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan.objects.exclude(stripe_price_id=""), slug=slug)
    if wallet_for(user=request.user).stripe_subscription_id:
        # An existing subscription is upgraded, downgraded or canceled in Stripe's Customer Portal.
        return _to_stripe(request, lambda: stripe_gateway.portal_for(request.user))
    return _to_stripe(request, lambda: stripe_gateway.checkout_for_plan(user=request.user, plan=plan))


@login_required
@post_only_form("billing")  # the portal opens from the billing page's button
def portal(request: HttpRequest) -> HttpResponse:
    return _to_stripe(request, lambda: stripe_gateway.portal_for(request.user))


@login_required
def checkout_success(request: HttpRequest) -> HttpResponse:
    # Never grants anything: credits arrive only through the signed webhook.
    if not stripe_gateway.payments_enabled():
        messages.error(request, stripe_gateway.PaymentsNotConfigured.default_message)
        return redirect("billing")
    session_id = request.GET.get("session_id")
    if not session_id:
        return redirect("billing")  # Stripe names the checkout it returns from; a bare visit paid nothing
    # The pack's credits, once the webhook has brought them (to this account: another's session shows nothing).
    purchase = checkout_purchase(user=request.user, session_id=session_id)
    context = {"nav": "billing", "wallet": wallet_for(user=request.user), "purchase": purchase}
    return render(request, "billing/success.html", context)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = stripe_event_verify(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except stripe_gateway.PaymentsNotConfigured as error:
        return _webhook_not_configured(request, error)
    except BadSignature as error:
        return error_json("bad_signature", 400, str(error))
    except BadEvent as error:
        logger.error("signed Stripe webhook that is no event: %s", error)
        return error_json("bad_event", 400, str(error))
    row = stripe_event_store(event=event)
    try:
        stripe_event_process(row=row)
    except Exception:  # any handler's failure, recorded on the event: the 500 makes Stripe send it again later
        logger.exception("Stripe event %s (%s) failed", row.event_id, row.type)
        return error_json("internal_error", 500, "Processing failed.")
    return JsonResponse({"received": True})


def _webhook_not_configured(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    response = error_json(error.code, error.status, error.message)
    # The operator's one line, instead of django.request's bare "Service Unavailable": Stripe retries each
    # event for days, so it keeps saying what to set until someone does.
    log_response(
        "Stripe webhook refused: STRIPE_WEBHOOK_SECRET is not set", response=response, request=request, logger=logger
    )
    return response
