"""Plugged into accounts' ApiRequestMiddleware through settings.FLIXLY_API_RESPONSE_HOOKS."""

from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import SAFE_METHODS

from billing.balance_cache import balance_parse
from billing.services import wallet_balance


def credit_balance_header(request: HttpRequest, response: HttpResponse) -> None:
    # A request that moved the wallet (a debit) noted the new balance; otherwise the mirror read with
    # the rate-limit count answers a safe request, and the database anything else.
    balance = getattr(request, "flixly_balance", None)
    if balance is None and request.method in SAFE_METHODS:
        # Read before the view ran: right for a request that cannot have moved money.
        balance = balance_parse(getattr(request, "flixly_reads", {}).get("balance"))
    if balance is None:
        balance = wallet_balance(user_id=request.flixly_user.pk)
    response["X-Credit-Balance"] = str(balance)
