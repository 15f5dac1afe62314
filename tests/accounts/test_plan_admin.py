from http import HTTPStatus

import pytest

from accounts.models import Plan

pytestmark = pytest.mark.django_db


def test_editing_a_plan_applies_to_cached_keys_at_once(
    client, user, staff_user, raw_key, django_capture_on_commit_callbacks
):
    staff_user.is_superuser = True
    staff_user.save()
    headers = {"Authorization": f"Bearer {raw_key}"}
    assert client.get("/api/v1/keys", headers=headers)["X-RateLimit-Limit"] == "10"
    plan = Plan.objects.get(slug="free")
    client.force_login(staff_user)
    form = {
        "name": plan.name,
        "requests_per_minute": 25,
        "parallel_tasks": 1,
        "monthly_credits": 0,
        "price_cents": 0,
        "currency": "usd",
        "stripe_price_id": "",
        "sort_order": 0,
    }
    with django_capture_on_commit_callbacks(execute=True):  # the admin's transaction commits
        assert client.post(f"/admin/accounts/plan/{plan.pk}/change/", form).status_code == HTTPStatus.FOUND
    client.logout()
    assert client.get("/api/v1/keys", headers=headers)["X-RateLimit-Limit"] == "25"
