import re
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.services import apikey_send_expiry_reminders

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_key(client, user, make_key) -> ApiKey:
    """A key of `user`, who is logged in to the dashboard."""
    make_key(user)
    client.force_login(user)
    return ApiKey.objects.get()


def test_an_expiry_reminder_is_sent_once_a_week_before(user, make_key):
    make_key(user, expires_in_days=30)
    with time_machine.travel(timezone.now() + timedelta(days=24)):
        assert apikey_send_expiry_reminders() == 1
        assert apikey_send_expiry_reminders() == 0
    assert len(mail.outbox) == 1
    assert "expires soon" in mail.outbox[0].subject
    assert "/settings/api-keys/" in mail.outbox[0].body


def test_no_reminder_for_revoked_or_distant_keys(user, make_key):
    make_key(user, expires_in_days=30)
    assert apikey_send_expiry_reminders() == 0


def test_the_expiry_reminder_says_to_switch_to_a_new_key_since_a_roll_keeps_the_date(user, make_key):
    # It said "Roll it before then so your integrations keep working": the rolled key died on the same day.
    make_key(user, expires_in_days=5)
    apikey_send_expiry_reminders()
    body = mail.outbox[0].body
    assert "Roll it" not in body
    assert "create a new key" in body.lower()
    assert "/settings/api-keys/" in body


def test_no_expiry_reminder_for_a_deactivated_accounts_keys(user, make_key):
    make_key(user, expires_in_days=5)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert apikey_send_expiry_reminders() == 0
    assert mail.outbox == []


def test_create_api_key_prints_only_the_key(user, capsys):
    call_command("create_api_key", "--email", user.email, "--name", "deploy")
    out = capsys.readouterr().out.strip()
    assert out.startswith("flx_live_") and len(out) == 49
    assert ApiKey.objects.get().name == "deploy"


def test_create_api_key_can_make_a_verified_free_account_with_a_test_key(capsys):
    call_command(
        "create_api_key", "--email", "New@Example.com", "--create-user", "--test", "--scopes", "generate,jobs:read"
    )
    assert capsys.readouterr().out.strip().startswith("flx_test_")
    user = User.objects.get(email="new@example.com")
    assert user.plan_id == "free"
    assert EmailAddress.objects.get(user=user).verified
    assert ApiKey.objects.get().scopes == ["generate", "jobs:read"]


def test_create_api_key_refuses_an_unknown_account_without_create_user():
    with pytest.raises(CommandError, match="--create-user"):
        call_command("create_api_key", "--email", "ghost@example.com")


def test_create_api_key_refuses_unknown_scopes(user):
    with pytest.raises(CommandError, match="scope"):
        call_command("create_api_key", "--email", user.email, "--scopes", "root")


def test_keys_page_creates_a_key_and_shows_it_once(client, user):
    client.force_login(user)
    response = client.post(
        "/settings/api-keys/",
        {"name": "Laptop", "mode": "live", "scopes": ["generate", "jobs:read"], "expires_in_days": 30, "once": "t1"},
    )
    assert response.status_code == HTTPStatus.OK
    assert "no-store" in response["Cache-Control"]
    raw = response.context["issued"].raw
    assert raw.encode() in response.content
    listing = client.get("/settings/api-keys/")
    assert raw.encode() not in listing.content
    assert ApiKey.objects.get().masked.encode() in listing.content


def test_keys_page_shows_a_bad_cidr_as_a_form_error(client, user):
    client.force_login(user)
    response = client.post(
        "/settings/api-keys/",
        {
            "name": "x",
            "mode": "live",
            "scopes": ["generate"],
            "expires_in_days": 30,
            "allowed_ips": "nope",
            "once": "t",
        },
    )
    assert "is not an IP address" in response.context["form"].errors["allowed_ips"][0]  # next to its field
    assert not ApiKey.objects.exists()


def test_keys_page_rolls_and_revokes(client, user, own_key):
    api_key = own_key
    rolled = client.post(f"/settings/api-keys/{api_key.id}/roll/", {"grace_hours": 2, "once": "t1"})
    assert rolled.context["issued"].raw.startswith("flx_live_")
    client.post(f"/settings/api-keys/{api_key.id}/revoke/")
    assert ApiKey.objects.get().revoked_at is not None


def test_keys_pages_of_another_account_are_not_found(client, user, make_key):
    make_key(user)
    other = User.objects.create_user(email="eve@example.com", password="x")
    client.force_login(other)
    key_id = ApiKey.objects.get().id
    assert client.get(f"/settings/api-keys/{key_id}/roll/").status_code == HTTPStatus.NOT_FOUND
    assert client.post(f"/settings/api-keys/{key_id}/revoke/").status_code == HTTPStatus.NOT_FOUND


CREATE = {"name": "Main key", "mode": "live", "scopes": ["generate"], "expires_in_days": 30, "once": "t1"}


def test_a_create_form_sent_twice_makes_one_key(client, user):
    client.force_login(user)
    assert client.post("/settings/api-keys/", CREATE).status_code == HTTPStatus.OK
    again = client.post("/settings/api-keys/", CREATE, follow=True)  # the browser's reload
    assert ApiKey.objects.count() == 1
    assert b"already sent" in again.content


def test_a_roll_form_sent_twice_rolls_once_and_the_copied_secret_keeps_working(client, user, own_key):
    api_key = own_key
    raw = client.post(f"/settings/api-keys/{api_key.id}/roll/", {"grace_hours": 0, "once": "r1"}).context["issued"].raw
    client.post(f"/settings/api-keys/{api_key.id}/roll/", {"grace_hours": 0, "once": "r1"})
    response = client.get("/api/v1/keys", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.FORBIDDEN)  # authenticated: the scope decides
    assert response.json().get("error", {}).get("code") != "unauthorized"


def test_a_form_without_its_token_asks_for_a_reload(client, user):
    client.force_login(user)
    response = client.post("/settings/api-keys/", {**CREATE, "once": ""})
    assert b"reload the page" in response.content
    assert not ApiKey.objects.exists()


def test_rolling_a_key_revoked_in_another_tab_is_a_form_error(client, user, own_key):
    api_key = own_key
    client.post(f"/settings/api-keys/{api_key.id}/revoke/")
    response = client.post(f"/settings/api-keys/{api_key.id}/roll/", {"grace_hours": 0, "once": "r2"})
    assert response.status_code == HTTPStatus.OK
    assert b"This key is revoked." in response.content


def test_a_revoked_keys_roll_and_revoke_pages_say_so_instead_of_offering_the_action(client, user, own_key):
    client.post(f"/settings/api-keys/{own_key.id}/revoke/")
    for path in (f"/settings/api-keys/{own_key.id}/roll/", f"/settings/api-keys/{own_key.id}/revoke/"):
        page = client.get(path, follow=True)
        assert page.redirect_chain[-1][0] == "/settings/api-keys/"
        assert b"is already revoked" in page.content
    again = client.post(f"/settings/api-keys/{own_key.id}/revoke/", follow=True)
    assert b"is already revoked" in again.content and b"stopped working immediately" not in again.content


def test_a_monthly_cap_past_the_column_is_a_form_error_not_a_crash(client, user):
    client.force_login(user)
    response = client.post("/settings/api-keys/", {**CREATE, "monthly_credit_cap": 9223372036854775808})
    assert response.status_code == HTTPStatus.OK
    assert not ApiKey.objects.exists()


def test_a_key_form_corrected_after_an_error_creates_the_key(client, user):
    client.force_login(user)
    refused = client.post("/settings/api-keys/", {**CREATE, "allowed_ips": "nope"})
    assert b"is not an IP address" in refused.content
    token = re.search(r'name="once" value="([^"]+)"', refused.content.decode()).group(1)
    created = client.post("/settings/api-keys/", {**CREATE, "once": token})
    assert created.status_code == HTTPStatus.OK and ApiKey.objects.count() == 1


def test_form_tokens_are_per_account(client, user, django_user_model):
    other = django_user_model.objects.create_user(email="bob@example.com", password="x")
    for account in (user, other):
        client.force_login(account)
        assert client.post("/settings/api-keys/", CREATE).status_code == HTTPStatus.OK
    assert ApiKey.objects.count() == 2


def test_the_key_page_still_works_when_the_cache_is_down(client, user, monkeypatch):
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", down)
    client.force_login(user)
    assert client.post("/settings/api-keys/", CREATE).status_code == HTTPStatus.OK
    assert ApiKey.objects.count() == 1


def test_the_keys_page_shows_a_grace_period_and_a_keys_limits(client, user, make_key):
    make_key(user, monthly_credit_cap=500, allowed_ips=["10.0.0.0/8"])
    api_key = ApiKey.objects.get()
    client.force_login(user)
    client.post(f"/settings/api-keys/{api_key.id}/roll/", {"grace_hours": 2, "once": "g1"})
    page = client.get("/settings/api-keys/").content.decode()
    assert "the old secret works until" in page
    assert "Cap: 500 credits a month" in page and "Only from 10.0.0.0/8" in page
    assert len(re.findall(r"<tr>", page)) == 2  # the header and one key: the secrets do not multiply rows


def test_reloading_a_refused_create_form_shows_the_refusal_again(client, user):
    # The refused send had spent the form's token: the reload claimed the form "was already sent".
    client.force_login(user)
    refused = {**CREATE, "allowed_ips": "banana"}
    first = client.post("/settings/api-keys/", refused)
    again = client.post("/settings/api-keys/", refused)  # the browser's reload of the POST
    assert first.status_code == again.status_code == HTTPStatus.OK
    assert b"already sent" not in again.content
    assert b"banana" in again.content
    assert not ApiKey.objects.exists()


def test_the_roll_page_says_the_key_keeps_its_expiry_date(client, user, own_key):
    client.force_login(user)
    page = client.get(f"/settings/api-keys/{own_key.id}/roll/").content.decode()
    assert f"keeps its expiry date, {own_key.expires_at:%Y-%m-%d}" in page


def test_the_roll_page_warns_that_rolling_again_ends_a_running_grace_period(client, user, own_key):
    from accounts.services import apikey_roll

    client.force_login(user)
    assert "still works until" not in client.get(f"/settings/api-keys/{own_key.id}/roll/").content.decode()
    apikey_roll(user=user, key_id=own_key.id, grace_hours=2)
    page = client.get(f"/settings/api-keys/{own_key.id}/roll/").content.decode()
    assert "The secret before the last roll still works until" in page
    assert "rolling again ends it when this roll's grace period ends, if that is sooner" in page


def test_the_create_form_shows_every_problem_on_one_send(client, user):
    # The IP and model errors used to appear only once the form's own errors were put right.
    client.force_login(user)
    bad = {**CREATE, "name": "n" * 101, "allowed_ips": "10.0.0.0/33, banana", "allowed_models": "not-a-model"}
    page = client.post("/settings/api-keys/", bad).content.decode()
    assert "at most 100 characters" in page
    assert "is not an IP address" in page and "not-a-model" in page
    assert not ApiKey.objects.exists()


def test_the_copy_button_is_hidden_until_javascript_can_make_it_work(client, user):
    # Without JavaScript it did nothing when pressed.
    client.force_login(user)
    page = client.post("/settings/api-keys/", CREATE).content.decode()
    assert 'data-copy="#new-key" hidden' in page


def test_a_key_used_moments_ago_says_so_in_words(client, user, own_key):
    from django.utils import timezone

    ApiKey.objects.filter(pk=own_key.pk).update(last_used_at=timezone.now())
    page = client.get("/settings/api-keys/").content.decode()
    assert "0\xa0minutes ago" not in page and "0 minutes ago" not in page
    assert "now" in page


def test_the_keys_page_keeps_each_allowed_ip_once_and_at_most_50(client, user):
    client.force_login(user)
    client.post("/settings/api-keys/", {**CREATE, "allowed_ips": "1.2.3.4, 1.2.3.4/32, 10.0.0.0/8"})
    assert ApiKey.objects.get().allowed_ips == ["1.2.3.4/32", "10.0.0.0/8"]
    many = ", ".join(f"10.0.{n}.0/24" for n in range(51))
    response = client.post("/settings/api-keys/", {**CREATE, "once": "t2", "allowed_ips": many})
    assert response.context["form"].errors["allowed_ips"] == ["At most 50 addresses or networks; 51 were given."]
    assert ApiKey.objects.count() == 1


def test_the_keys_page_takes_at_most_200_allowed_models(client, user, settings):
    settings.FLIXLY_UNKNOWN_MODEL_IDS = ""  # any id: this is about the count
    client.force_login(user)
    many = ", ".join(f"model-{n}" for n in range(201))
    response = client.post("/settings/api-keys/", {**CREATE, "allowed_models": many})
    assert response.context["form"].errors["allowed_models"] == ["At most 200 models; 201 were given."]


def test_a_key_form_with_no_scope_ticked_says_to_choose_one(client, user):
    client.force_login(user)
    response = client.post("/settings/api-keys/", {**CREATE, "scopes": []})
    assert response.context["form"].errors["scopes"] == ["Choose at least one scope."]
    assert not ApiKey.objects.exists()


def test_a_refused_key_form_lists_its_problems_at_its_top_with_links_to_the_fields(client, user):
    # The errors were only under their fields, below the fold, and the page came back scrolled to its top.
    client.force_login(user)
    page = client.post("/settings/api-keys/", {**CREATE, "scopes": [], "allowed_ips": "hello"}).content.decode()
    summary = re.search(r'<div class="message error error-summary" id="error-summary"[^>]*>(.*?)</div>', page, re.S)
    assert summary is not None and page.index("error-summary") < page.index('name="name"')
    assert '<a href="#id_scopes_0">Scopes: Choose at least one scope.</a>' in summary.group(1)
    assert '<a href="#id_allowed_ips">Allowed IPs: &#x27;hello&#x27; is not an IP address' in summary.group(1)


def test_the_key_form_posts_to_the_page_without_an_anchor_a_created_key_would_keep(client, user):
    client.force_login(user)
    page = client.get("/settings/api-keys/").content.decode()
    assert 'action="/settings/api-keys/"' in page  # "#error-summary" stayed in the URL of the new key's page
    assert 'id="error-summary"' not in page


def test_a_refused_key_form_focuses_its_summary_without_javascript(client, user):
    client.force_login(user)
    page = client.post("/settings/api-keys/", {**CREATE, "scopes": []}).content.decode()
    assert re.search(r'<div [^>]*id="error-summary"[^>]*tabindex="-1" autofocus>', page)  # focused and scrolled to


def test_flixlys_own_e_mails_take_the_subject_prefix_allauths_do(user, make_key, settings):
    settings.ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Acme AI] "  # one setting names the site in every subject
    make_key(user, expires_in_days=30)
    with time_machine.travel(timezone.now() + timedelta(days=24)):
        apikey_send_expiry_reminders()
    assert mail.outbox[0].subject.startswith("[Acme AI] Your API key flx_live_")
