"""Deactivating an account (staff's action in the admin) stops its sessions and keys at once."""

from http import HTTPStatus

import pytest

from accounts.services import user_deactivate

pytestmark = pytest.mark.django_db


def test_a_deactivated_accounts_keys_stop_working_at_once(client, user, raw_key, django_capture_on_commit_callbacks):
    headers = {"Authorization": f"Bearer {raw_key}"}
    assert client.get("/api/v1/keys", headers=headers).status_code == HTTPStatus.OK
    with django_capture_on_commit_callbacks(execute=True):
        assert user_deactivate(user=user) is True
    user.refresh_from_db()
    assert user.is_active is False
    assert client.get("/api/v1/keys", headers=headers).status_code == HTTPStatus.UNAUTHORIZED


def test_deactivating_an_account_that_is_inactive_already_does_nothing(user):
    user_deactivate(user=user)
    assert user_deactivate(user=user) is False
