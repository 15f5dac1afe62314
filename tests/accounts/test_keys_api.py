from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from accounts.models import DEFAULT_SCOPES, ApiKey
from generation.models import AiModel

pytestmark = pytest.mark.django_db


def create(api, **body):
    return api.post("/api/v1/keys", {"name": "ci", **body}, content_type="application/json")


def test_a_key_created_without_a_name_is_named_api_key(api):
    response = api.post("/api/v1/keys", {}, content_type="application/json")
    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["data"]["name"] == "API key"


def test_creating_a_key_returns_the_secret_once(api):
    response = create(api)
    assert response.status_code == HTTPStatus.CREATED
    data = response.json()["data"]
    assert data["key"].startswith("flx_live_") and len(data["key"]) == 49
    assert data["prefix"] == data["key"][:13]
    assert data["lastFour"] == data["key"][-4:]
    assert data["scopes"] == DEFAULT_SCOPES
    assert data["status"] == "active"
    listed = api.get("/api/v1/keys").json()["data"]
    assert all("key" not in item for item in listed)


def test_a_new_key_expires_in_90_days_by_default(api):
    data = create(api).json()["data"]
    expires = ApiKey.objects.get(id=data["id"]).expires_at
    assert abs(expires - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)


def test_a_test_mode_key_has_the_test_prefix(api):
    assert create(api, mode="test").json()["data"]["key"].startswith("flx_test_")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expiresInDays": 366}, "expiresInDays"),
        ({"expiresInDays": 0}, "expiresInDays"),
        ({"scopes": ["everything"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"allowedIps": ["not-an-ip"]}, "allowedIps"),
        ({"allowedModels": ["no-such-model"]}, "allowedModels"),
        ({"name": 123}, "name"),
        ({"expiresInDays": "30"}, "expiresInDays"),
        ({"monthlyCreditCap": "100"}, "monthlyCreditCap"),
        ({"allowedModels": [1]}, "allowedModels"),
        ({"scopes": "generate"}, "scopes"),
        ({"bogus": 1}, "bogus"),
        ({"expiresInDays": 10**400}, "expiresInDays"),
        ({"monthlyCreditCap": -5}, "monthlyCreditCap"),
        ({"monthlyCreditCap": 2**31}, "monthlyCreditCap"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_key_settings_are_a_validation_error_naming_the_field(api, body, field):
    response = create(api, **body)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert field in response.json()["error"]["details"]


def test_a_model_allowlist_takes_catalog_ids_even_of_disabled_models(api):
    for model_id, enabled in (("flux-dev", True), ("old-model", False)):  # the catalog may be loaded already
        fields = {"name": model_id, "types": ["TEXT_TO_IMAGE"], "credits": 3, "route": "local", "enabled": enabled}
        AiModel.objects.update_or_create(id=model_id, defaults=fields)
    response = create(api, allowedModels=["old-model", "flux-dev", "flux-dev"])
    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["data"]["allowedModels"] == ["flux-dev", "old-model"]
    error = create(api, allowedModels=["flux-dev", "nope"]).json()["error"]
    assert error["details"]["allowedModels"] == ["No model 'nope' in the catalog; see GET /api/v1/models."]


def test_the_listing_shows_usage_and_status(api):
    create(api)
    items = api.get("/api/v1/keys").json()
    assert items["nextCursor"] is None
    first = items["data"][-1]
    assert set(first) >= {
        "id",
        "prefix",
        "lastFour",
        "name",
        "scopes",
        "createdAt",
        "lastUsedAt",
        "lastUsedIp",
        "expiresAt",
        "status",
    }
    assert first["lastUsedIp"] == "127.0.0.1"


def test_the_listing_is_cursor_paginated_newest_first(api):
    for n in range(3):
        create(api, name=f"k{n}")
    page = api.get("/api/v1/keys?limit=2").json()
    assert [k["name"] for k in page["data"]] == ["k2", "k1"]
    rest = api.get(f"/api/v1/keys?limit=2&cursor={page['nextCursor']}").json()
    assert [k["name"] for k in rest["data"]] == ["k0", "test key"]
    assert rest["nextCursor"] is None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=abc", "cursor=%%%", "limit=%C2%B2", "limit=" + "1" * 5000]
)
def test_bad_pagination_is_a_validation_error(api, query):
    assert api.get(f"/api/v1/keys?{query}").status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_rolling_returns_a_new_secret_for_the_same_id(api):
    key_id = create(api).json()["data"]["id"]
    response = api.post(f"/api/v1/keys/{key_id}/roll", {"graceHours": 1}, content_type="application/json")
    assert response.status_code == HTTPStatus.OK
    data = response.json()["data"]
    assert data["id"] == key_id
    assert data["key"].startswith("flx_live_")


def test_a_grace_over_24_hours_is_refused(api):
    key_id = create(api).json()["data"]["id"]
    response = api.post(f"/api/v1/keys/{key_id}/roll", {"graceHours": 25}, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "graceHours" in response.json()["error"]["details"]


def test_revoking_is_final_and_idempotent(api):
    key_id = create(api).json()["data"]["id"]
    assert api.delete(f"/api/v1/keys/{key_id}").json()["data"]["status"] == "revoked"
    assert api.delete(f"/api/v1/keys/{key_id}").json()["data"]["status"] == "revoked"
    roll = api.post(f"/api/v1/keys/{key_id}/roll", content_type="application/json")
    assert roll.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


@pytest.mark.parametrize("key_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_key_id_is_not_found(api, key_id):
    assert api.delete(f"/api/v1/keys/{key_id}").status_code == HTTPStatus.NOT_FOUND


def test_a_key_without_keys_manage_cannot_manage_keys(client, user, make_key):
    key = make_key(user)  # default scopes exclude keys:manage
    response = client.get("/api/v1/keys", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_a_test_key_manages_only_test_keys(client, user, make_key):
    from accounts.models import Scope

    test_key = make_key(user, mode="test", scopes=list(Scope.values))
    test_key_id = ApiKey.objects.get(mode="test").id
    make_key(user)
    live = ApiKey.objects.get(mode="live")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {test_key}"
    assert create(client, mode="live").status_code == HTTPStatus.FORBIDDEN
    assert create(client, mode="test").status_code == HTTPStatus.CREATED
    roll = client.post(f"/api/v1/keys/{live.id}/roll", {}, content_type="application/json")
    assert roll.status_code == HTTPStatus.FORBIDDEN
    assert client.delete(f"/api/v1/keys/{live.id}").status_code == HTTPStatus.FORBIDDEN
    assert ApiKey.objects.get(id=live.id).revoked_at is None
    assert client.delete(f"/api/v1/keys/{test_key_id}").status_code == HTTPStatus.OK  # itself: a test key


@pytest.mark.parametrize("body", [{"graceHours": "2"}, {"graceHours": True}, {"grace": 2}])
def test_a_roll_body_of_the_wrong_shape_is_a_422(api, body):
    key_id = create(api).json()["data"]["id"]
    response = api.post(f"/api/v1/keys/{key_id}/roll", body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert ApiKey.objects.get(id=key_id).rolled_at is None


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/x-www-form-urlencoded", "%%%&&&==="), ("multipart/form-data; boundary=b", "zzzzzz")],
)
def test_a_form_body_is_a_415_and_rolls_nothing(api, content_type, body):
    # Read as an empty form, a garbled body once rolled the key with no grace: its secret died at once.
    key_id = create(api).json()["data"]["id"]
    response = api.post(f"/api/v1/keys/{key_id}/roll", body, content_type=content_type)
    assert response.status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert ApiKey.objects.get(id=key_id).rolled_at is None
    assert api.post("/api/v1/keys", "name=form", content_type=content_type).status_code == 415


def test_every_bad_setting_is_named_in_one_answer(api):
    response = create(api, allowedIps=["10.0.0.0/33"], allowedModels=["not-a-model"], expiresInDays=999)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert {"allowedIps", "allowedModels", "expiresInDays"} <= set(response.json()["error"]["details"])


def test_an_expired_key_cannot_be_rolled_into_a_key_that_is_dead_already(api):
    key_id = create(api).json()["data"]["id"]
    ApiKey.objects.filter(id=key_id).update(expires_at=timezone.now() - timedelta(days=1))
    response = api.post(f"/api/v1/keys/{key_id}/roll", {}, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "expired" in response.json()["error"]["message"]
    assert ApiKey.objects.get(id=key_id).rolled_at is None


def test_the_api_counts_allowed_ips_as_the_dashboard_does(api):
    assert create(api, allowedIps=["1.2.3.4"] * 60).status_code == HTTPStatus.CREATED  # one address, sent 60 times
    response = create(api, allowedIps=[f"10.0.{n}.0/24" for n in range(51)])
    assert response.json()["error"]["details"]["allowedIps"] == ["At most 50 addresses or networks; 51 were given."]
