"""Bench accounts and the no-op model, made in-process with the product's own services (Django is set up)."""

from dataclasses import dataclass

from accounts.models import User
from accounts.services import apikey_create
from billing.services import wallet_adjust
from generation.catalog import catalog_forget
from generation.models import AiModel

PLAN = "pro-plus"  # 200 requests/min and 25 parallel tasks: the most the plan constraints allow


@dataclass(frozen=True)
class Account:
    user_id: int
    key: str


def _create(email: str, credits: int) -> Account:
    user = User.objects.create_user(email=email)
    wallet_adjust(user_id=user.pk, amount=credits, reason="bench credits")
    return Account(user.pk, apikey_create(user=user, name="bench").raw)


def create_accounts(prefix: str, count: int, credits: int = 10_000_000) -> list[Account]:
    """`count` verified pro-plus accounts, each with one live key (default scopes) and `credits` credits."""
    accounts = [_create(f"{prefix}-{index}@bench.flixly.test", credits) for index in range(count)]
    User.objects.filter(pk__in=[account.user_id for account in accounts]).update(plan_id=PLAN)
    return accounts


def create_noop_model() -> None:
    AiModel.objects.create(
        id="bench-noop",
        name="Bench no-op",
        types=["CHAT"],
        credits=1,
        route="noop",
        upstream_model="noop",
        timeout_seconds=60,
    )
    catalog_forget()
