"""Staff see every account's API keys in the admin and can revoke them; nobody types one in."""

from http import HTTPStatus

import pytest
from django.contrib.messages import get_messages

from accounts.models import ApiKey
from tests.admin_actions import offers_action, run_action

pytestmark = pytest.mark.django_db


def test_staff_who_may_only_view_keys_cannot_revoke_them(staff_client, user, raw_key):
    key = ApiKey.objects.get(user=user)
    client = staff_client("accounts.view_apikey")
    assert not offers_action(client, "/admin/accounts/apikey/", "revoke_keys")
    assert not offers_action(client, f"/admin/accounts/apikey/{key.pk}/change/", "revoke_keys")
    run_action(client, "/admin/accounts/apikey/", "revoke_keys", key.pk)
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_key_cannot_be_deleted_in_the_admin_only_revoked(admin_client, user, raw_key):
    # A deleted key kept working while the auth layer's cache held it, and its record was gone.
    key = ApiKey.objects.get(user=user)
    assert admin_client.get(f"/admin/accounts/apikey/{key.pk}/delete/").status_code == HTTPStatus.FORBIDDEN
    assert not offers_action(admin_client, "/admin/accounts/apikey/", "delete_selected")
    run_action(admin_client, "/admin/accounts/apikey/", "delete_selected", key.pk, post="yes")
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_revoking_keys_with_the_admin_action_is_in_each_keys_history(admin_client, staff_user, user, raw_key):
    from django.contrib.admin.models import CHANGE, LogEntry

    key = ApiKey.objects.get(user=user)
    run_action(admin_client, "/admin/accounts/apikey/", "revoke_keys", key.pk)
    entry = LogEntry.objects.get(object_id=str(key.pk))
    assert (entry.user, entry.action_flag, entry.change_message) == (staff_user, CHANGE, "Revoked by the admin action.")
    assert (
        "Revoked by the admin action." in admin_client.get(f"/admin/accounts/apikey/{key.pk}/history/").content.decode()
    )


def test_revoking_keys_counts_them_in_words(admin_client, user, raw_key):
    key = ApiKey.objects.get(user=user)
    response = run_action(admin_client, "/admin/accounts/apikey/", "revoke_keys", key.pk)
    assert [str(message) for message in get_messages(response.wsgi_request)] == ["Revoked 1 key."]
