"""Staff see every account's API keys in the admin and can revoke them; nobody types one in."""

import pytest

from accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def test_staff_who_may_only_view_keys_cannot_revoke_them(staff_client, user, raw_key):
    key = ApiKey.objects.get(user=user)
    client = staff_client("accounts.view_apikey")
    assert 'value="revoke_keys"' not in client.get("/admin/accounts/apikey/").content.decode()
    assert 'value="revoke_keys"' not in client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    client.post("/admin/accounts/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk], "index": 0})
    key.refresh_from_db()
    assert key.revoked_at is None
