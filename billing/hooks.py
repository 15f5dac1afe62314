"""Plugged into accounts' ApiRequestMiddleware through settings.FLIXLY_API_RESPONSE_HOOKS."""

from django.http import HttpRequest, HttpResponse

from billing.balance_cache import balance_parse
from billing.services import wallet_balance


def credit_balance_header(request: HttpRequest, response: HttpResponse) -> None:
    # A request that moved the wallet (a debit) noted the new balance; otherwise the mirror read with
    # the rate-limit count answers, and the database only when the mirror has nothing.
    balance = getattr(request, "flixly_balance", None)
    if balance is None:
        balance = balance_parse(getattr(request, "flixly_reads", {}).get("balance"))
    if balance is None:
        balance = wallet_balance(user_id=request.flixly_user.pk)
    response["X-Credit-Balance"] = str(balance)
