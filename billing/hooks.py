"""Plugged into accounts' ApiRequestMiddleware through settings.FLIXLY_API_RESPONSE_HOOKS."""

from django.http import HttpRequest, HttpResponse

from billing.services import wallet_balance


def credit_balance_header(request: HttpRequest, response: HttpResponse) -> None:
    # A request that already moved the wallet (a debit) noted the new balance: no extra query then.
    balance = getattr(request, "flixly_balance", None)
    if balance is None:
        balance = wallet_balance(user_id=request.flixly_user.pk)
    response["X-Credit-Balance"] = str(balance)
