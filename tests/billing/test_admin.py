from http import HTTPStatus

import pytest

from billing.models import LedgerEntry, Wallet
from billing.services import wallet_adjust, wallet_balance

pytestmark = pytest.mark.django_db


def test_staff_grant_writes_a_ledger_row_with_their_name_and_reason(client, user, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    client.force_login(staff_user)
    response = client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {"amount": 25, "reason": "Goodwill"})
    assert response.status_code == HTTPStatus.FOUND
    entry = LedgerEntry.objects.filter(user=user).first()
    assert (entry.amount, entry.reason, entry.staff_user) == (25, "Goodwill", staff_user)
    assert wallet_balance(user_id=user.pk) == 35


def test_the_wallet_page_is_read_only_and_shows_the_ledger(client, user, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    wallet_adjust(user_id=user.pk, amount=10, reason="Visible reason")
    client.force_login(staff_user)
    page = client.get(f"/admin/billing/wallet/{user.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    assert b"Visible reason" in page.content
    assert b'name="balance"' not in page.content
    client.post(f"/admin/billing/wallet/{user.pk}/change/", {"balance": 999999})
    assert Wallet.objects.get(user=user).balance == 10


def test_non_staff_cannot_adjust(client, user):
    client.force_login(user)
    response = client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {"amount": 25, "reason": "x"})
    assert response.status_code == HTTPStatus.FOUND
    assert wallet_balance(user_id=user.pk) == 0
