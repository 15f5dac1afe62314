"""Staff run customers' accounts from the admin: one page per account, deactivation instead of deletion."""

import re
from html import unescape
from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress

from billing.services import wallet_adjust
from tests.admin_actions import offers_action, run_action
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_account_cannot_be_deleted_its_ledger_is_the_record_of_its_money(admin_client, user):
    assert admin_client.get(f"/admin/accounts/user/{user.pk}/delete/").status_code == HTTPStatus.FORBIDDEN
    changelist = admin_client.get("/admin/accounts/user/").content.decode()
    assert "delete_selected" not in changelist and "deactivate" in changelist


def test_deactivating_accounts_stops_their_keys_at_once(
    admin_client, user, raw_key, django_capture_on_commit_callbacks
):
    headers = {"Authorization": f"Bearer {raw_key}"}
    assert admin_client.get("/api/v1/keys", headers=headers).status_code == HTTPStatus.OK
    with django_capture_on_commit_callbacks(execute=True):  # the admin's transaction commits
        run_action(admin_client, "/admin/accounts/user/", "deactivate", user.pk)
    user.refresh_from_db()
    assert user.is_active is False
    assert admin_client.get("/api/v1/keys", headers=headers).status_code == HTTPStatus.UNAUTHORIZED


def test_an_accounts_page_shows_its_balance_and_links_to_its_credits_jobs_and_keys(admin_client, user):
    wallet_adjust(user_id=user.pk, amount=42, reason="start")
    page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    assert "42 credits" in page
    assert f"/admin/billing/wallet/{user.pk}/adjust/" in page
    assert f"/admin/generation/job/?user__id__exact={user.pk}" in page
    assert f"/admin/accounts/apikey/?user__id__exact={user.pk}" in page


def test_an_account_staff_add_needs_no_verification_e_mail(admin_client, django_user_model):
    password = "Quiet-Lake-4512-x"
    form = {"email": "added@example.com", "password1": password, "password2": password, "usable_password": "true"}
    admin_client.post("/admin/accounts/user/add/", form)
    added = django_user_model.objects.get(email="added@example.com")
    assert EmailAddress.objects.filter(user=added, email=added.email, verified=True, primary=True).exists()


def test_staff_who_may_only_view_accounts_cannot_deactivate_them(staff_client, user):
    client = staff_client("accounts.view_user")
    assert not offers_action(client, "/admin/accounts/user/", "deactivate")
    assert not offers_action(client, f"/admin/accounts/user/{user.pk}/change/", "deactivate")
    run_action(client, "/admin/accounts/user/", "deactivate", user.pk)
    user.refresh_from_db()
    assert user.is_active is True


def change_form(user, **fields) -> dict:
    """The account's page as sent by Save, with `fields` changed."""
    form = {"email": user.email, "plan": user.plan_id, "is_active": "on"}
    return form | {"date_joined_0": "2026-01-01", "date_joined_1": "10:00:00"} | fields


def test_only_superusers_can_grant_staff_superuser_groups_or_permissions(staff_client, staff_user):
    from django.contrib.auth.models import Group, Permission

    client = staff_client("accounts.view_user", "accounts.change_user")
    adjust_credits = Permission.objects.get(codename="adjust_credits")
    finance = Group.objects.create(name="Finance")
    form = change_form(
        staff_user, is_staff="on", is_superuser="on", groups=[finance.pk], user_permissions=[adjust_credits.pk]
    )
    response = client.post(f"/admin/accounts/user/{staff_user.pk}/change/", form)
    assert response.status_code == HTTPStatus.FOUND
    staff_user.refresh_from_db()
    assert staff_user.is_superuser is False and not staff_user.groups.exists()
    assert not staff_user.user_permissions.filter(codename="adjust_credits").exists()


def test_staff_who_are_not_superusers_cannot_make_an_account_staff(staff_client, user):
    client = staff_client("accounts.view_user", "accounts.change_user")
    client.post(f"/admin/accounts/user/{user.pk}/change/", change_form(user, is_staff="on"))
    user.refresh_from_db()
    assert user.is_staff is False


def test_a_superuser_can_make_an_account_staff(admin_client, user):
    admin_client.post(f"/admin/accounts/user/{user.pk}/change/", change_form(user, is_staff="on"))
    user.refresh_from_db()
    assert user.is_staff is True


@pytest.mark.parametrize("role", ["superuser", "staff"])
def test_staff_who_are_not_superusers_cannot_change_another_staff_members_password_or_address(
    staff_client, django_user_model, role
):
    # Whoever sets their password can sign in as them, with every permission they hold.
    make = django_user_model.objects.create_superuser if role == "superuser" else django_user_model.objects.create_user
    boss = make(email="boss@example.com", password="correct horse battery", is_staff=True)
    client = staff_client("accounts.view_user", "accounts.change_user")
    password = {"password1": "Taken-Over-4512", "password2": "Taken-Over-4512", "usable_password": "true"}
    client.post(f"/admin/accounts/user/{boss.pk}/password/", password)
    client.post(f"/admin/accounts/user/{boss.pk}/change/", change_form(boss, email="me@example.com"))
    boss.refresh_from_db()
    assert boss.check_password("correct horse battery") and boss.email == "boss@example.com"


def log_in(email: str, password: str = "correct horse battery"):
    from django.test import Client

    return Client().post("/accounts/login/", {"login": email, "password": password})


def test_an_address_staff_change_is_the_login_at_once_and_the_old_one_no_longer_is(admin_client):
    customer = UserFactory(email="old@example.com")
    admin_client.post(f"/admin/accounts/user/{customer.pk}/change/", change_form(customer, email="New@Example.com"))
    customer.refresh_from_db()
    assert customer.email == "new@example.com"
    assert log_in("new@example.com")["Location"] == "/dashboard/"
    assert log_in("old@example.com").status_code == HTTPStatus.OK  # the form again, with its error


def test_an_address_another_account_uses_is_refused_in_plain_words(admin_client):
    UserFactory(email="taken@example.com")
    customer = UserFactory(email="mine@example.com")
    page = admin_client.post(
        f"/admin/accounts/user/{customer.pk}/change/", change_form(customer, email="Taken@Example.com")
    )
    assert "Another account already uses this e-mail address." in page.content.decode()
    customer.refresh_from_db()
    assert customer.email == "mine@example.com"


def test_an_account_staff_add_is_stored_lower_cased_as_sign_up_stores_it(admin_client, django_user_model):
    password = "Quiet-Lake-4512-x"
    form = {"email": "Added@Example.com", "password1": password, "password2": password, "usable_password": "true"}
    admin_client.post("/admin/accounts/user/add/", form)
    assert django_user_model.objects.filter(email="added@example.com").exists()
    assert log_in("added@example.com", password)["Location"] == "/dashboard/"


def test_deactivating_accounts_is_in_each_accounts_history(admin_client, user):
    from django.contrib.admin.models import LogEntry

    run_action(admin_client, "/admin/accounts/user/", "deactivate", user.pk)
    [entry] = LogEntry.objects.filter(object_id=str(user.pk))
    assert entry.change_message == "Deactivated by the admin action."


def test_staff_who_are_not_superusers_deactivate_customers_but_not_staff(staff_client, django_user_model, user):
    boss = django_user_model.objects.create_superuser(email="boss@example.com", password="correct horse battery")
    colleague = django_user_model.objects.create_user(email="colleague@example.com", password="x" * 12, is_staff=True)
    client = staff_client("accounts.view_user", "accounts.change_user")
    chosen = [boss.pk, colleague.pk, user.pk]
    run_action(client, "/admin/accounts/user/", "deactivate", *chosen)
    active = dict(django_user_model.objects.filter(pk__in=chosen).values_list("pk", "is_active"))
    assert active == {boss.pk: True, colleague.pk: True, user.pk: False}


def test_every_list_an_accounts_page_links_to_opens_on_that_accounts_rows(admin_client, user):
    # A lookup a list does not accept sends the admin back to it with ?e=1: the links name user__id__exact.
    wallet_adjust(user_id=user.pk, amount=42, reason="start")
    wallet_adjust(user_id=UserFactory().pk, amount=7, reason="someone else")
    page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    links = re.findall(r'href="(/admin/[^"]+\?user__id__exact=[^"]+)"', page)
    assert len(links) == 3  # API keys, jobs, credit ledger
    for link in links:
        response = admin_client.get(unescape(link))
        assert response.status_code == HTTPStatus.OK, link
        assert {row.user_id for row in response.context["cl"].result_list} <= {user.pk}
