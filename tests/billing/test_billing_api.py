import uuid
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.db import transaction

from billing.models import EntryKind, LedgerEntry
from billing.services import debit_prepare, wallet_adjust, wallet_balance, wallet_refund

pytestmark = pytest.mark.django_db


def spend(user, amount, job, category):
    with transaction.atomic():
        debit_prepare(
            user_id=user.pk, amount=amount, idempotency_key=f"debit:{job}", reference_id=job, category=category
        ).run()


def test_usage_reports_credits_plan_and_use_per_type(api, user):
    wallet_adjust(user_id=user.pk, amount=100, reason="funds")
    spend(user, 12, "v1", "videos")
    spend(user, 4, "i1", "images")
    spend(user, 4, "i2", "images")
    wallet_refund(user_id=user.pk, amount=4, job_id="i2", category="images")
    data = api.get("/api/v1/usage").json()["data"]
    assert data["credits"] == 84
    assert data["plan"] == "free"
    assert data["used"] == {"images": 1, "videos": 1, "audio": 0, "chat": 0}
    assert data["creditsUsedThisCycle"] == 16
    assert data["rateLimit"] == {"requestsPerMinute": 10, "parallelTasks": 1}
    assert data["cycleStart"] < data["cycleEnd"]


def test_the_ledger_lists_credit_movements_newest_first(api, user):
    wallet_adjust(user_id=user.pk, amount=100, reason="funds")
    spend(user, 12, "v1", "videos")
    body = api.get("/api/v1/credits/ledger").json()
    assert [e["amount"] for e in body["data"]] == [-12, 100]
    assert body["data"][0]["balanceAfter"] == 88
    assert body["nextCursor"] is None
    ids = [e["id"] for e in body["data"]]
    assert len(set(ids)) == 2 and all(str(uuid.UUID(i)) == i for i in ids)  # the contract's ids are UUIDs


def test_every_authenticated_response_carries_the_credit_balance(api, user):
    wallet_adjust(user_id=user.pk, amount=7, reason="funds")
    for path in ("/api/v1/usage", "/api/v1/credits/ledger", "/api/v1/keys"):
        assert api.get(path)["X-Credit-Balance"] == "7"


def test_billing_endpoints_need_the_billing_scope(client, user, make_key):
    key = make_key(user, scopes=["generate"])
    response = client.get("/api/v1/usage", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_grant_credits_writes_a_ledger_row(user, capsys):
    call_command("grant_credits", "--email", user.email, "--amount", "250", "--reason", "Promo")
    assert wallet_balance(user_id=user.pk) == 250
    assert LedgerEntry.objects.get().reason == "Promo"
    assert "+250" in capsys.readouterr().out


def test_grant_credits_with_a_negative_amount_stops_at_zero_and_says_so(user, capsys):
    wallet_adjust(user_id=user.pk, amount=30, reason="funds")
    call_command("grant_credits", "--email", user.email, "--amount", "-100", "--reason", "Correction")
    assert wallet_balance(user_id=user.pk) == 0
    output = capsys.readouterr().out
    assert f"Only 30 of the 100 credits asked were taken from {user.email}: the balance was 30." in output


def test_create_api_key_with_credits_starts_with_exactly_those_credits(capsys, settings):
    settings.FLIXLY_SIGNUP_BONUS = 50
    call_command("create_api_key", "--email", "cli@example.com", "--create-user", "--credits", "300")
    from accounts.models import User

    user = User.objects.get(email="cli@example.com")
    assert wallet_balance(user_id=user.pk) == 300
    assert LedgerEntry.objects.get(user=user).kind == EntryKind.ADJUSTMENT
