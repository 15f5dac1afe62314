import re
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from billing.models import CreditPack, LedgerEntry, Wallet
from billing.services import MAX_BALANCE, MAX_CREDITS_PER_MOVEMENT, debit_prepare, wallet_adjust, wallet_balance
from flixly_site.forms import _token_key
from tests.admin_actions import offers_action, run_action

pytestmark = pytest.mark.django_db


def test_staff_grant_writes_a_ledger_row_with_their_name_and_reason(client, user, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    client.force_login(staff_user)
    response = client.post(
        f"/admin/billing/wallet/{user.pk}/adjust/", {"amount": 25, "reason": "Goodwill", "once": "t1"}
    )
    assert response.status_code == HTTPStatus.FOUND
    entry = LedgerEntry.objects.filter(user=user).first()
    assert (entry.amount, entry.reason, entry.staff_user) == (25, "Goodwill", staff_user)
    assert wallet_balance(user_id=user.pk) == 35


def test_a_grant_sent_twice_is_written_once(admin_client, user):
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    form = admin_client.get(f"/admin/billing/wallet/{user.pk}/adjust/").context["form"]
    grant = {"amount": 1000, "reason": "Back and submit", "once": form["once"].value()}
    first = admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", grant)
    again = admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", grant, follow=True)
    assert first.status_code == HTTPStatus.FOUND
    assert any("already sent" in str(message) for message in again.context["messages"])
    assert wallet_balance(user_id=user.pk) == 1010 and LedgerEntry.objects.filter(user=user).count() == 2


def test_a_grant_sent_twice_while_the_cache_is_down_is_still_written_once(admin_client, user, monkeypatch):
    monkeypatch.setattr("flixly_site.forms.cache.add", lambda *args, **kwargs: 1 / 0)  # form_token_spend gives up
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    grant = {"amount": 1000, "reason": "Back and submit", "once": "cache-down"}
    for _ in range(2):
        admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", grant)
    assert wallet_balance(user_id=user.pk) == 1010 and LedgerEntry.objects.filter(user=user).count() == 2


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


def test_staff_without_the_credits_permission_cannot_grant(client, user, staff_user):
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    client.force_login(staff_user)  # staff, but given no permissions
    url = f"/admin/billing/wallet/{user.pk}/adjust/"
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN
    response = client.post(url, {"amount": 1_000_000, "reason": "for me", "once": "t1"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert wallet_balance(user_id=user.pk) == 10


def test_staff_given_the_credits_permission_can_grant(client, user, staff_user):
    from django.contrib.auth.models import Permission

    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    staff_user.user_permissions.add(Permission.objects.get(codename="adjust_credits"))
    client.force_login(staff_user)
    client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {"amount": 5, "reason": "Goodwill", "once": "t1"})
    assert wallet_balance(user_id=user.pk) == 15


def test_staff_without_permissions_cannot_reprocess_stripe_events(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/admin/billing/stripeevent/").status_code == HTTPStatus.FORBIDDEN


def test_non_staff_cannot_adjust(client, user):
    client.force_login(user)
    response = client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {"amount": 25, "reason": "x", "once": "t1"})
    assert response.status_code == HTTPStatus.FOUND
    assert wallet_balance(user_id=user.pk) == 0


@pytest.mark.parametrize("amount", ["99999999999999999999", "9223372036854775807", "-99999999999999999999"])
def test_a_grant_above_the_maximum_is_a_form_error_not_a_500(admin_client, user, amount):
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    response = admin_client.post(
        f"/admin/billing/wallet/{user.pk}/adjust/", {"amount": amount, "reason": "Typo", "once": "t1"}
    )
    assert response.status_code == HTTPStatus.OK
    refused = f"An amount can be at most {MAX_CREDITS_PER_MOVEMENT:,} credits."
    assert response.context["form"].errors["amount"] == [refused]
    assert wallet_balance(user_id=user.pk) == 10
    assert LedgerEntry.objects.filter(user=user).count() == 1


def test_a_grant_past_the_largest_balance_is_a_form_error_not_a_500(admin_client, user):
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    Wallet.objects.filter(user=user).update(balance=MAX_BALANCE - 5)
    response = admin_client.post(
        f"/admin/billing/wallet/{user.pk}/adjust/", {"amount": 6, "reason": "Goodwill", "once": "t1"}
    )
    assert response.status_code == HTTPStatus.OK
    assert "past its maximum" in response.context["form"].errors["amount"][0]
    assert wallet_balance(user_id=user.pk) == MAX_BALANCE - 5


def test_a_credit_pack_above_the_maximum_is_a_form_error(admin_client):
    pack = {"name": "Huge", "credits": MAX_CREDITS_PER_MOVEMENT + 1, "price_cents": 500, "currency": "usd"}
    response = admin_client.post("/admin/billing/creditpack/add/", {**pack, "active": "on", "sort_order": 0})
    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors["credits"]
    assert not CreditPack.objects.exists()


def test_staff_who_may_only_view_stripe_events_cannot_process_them_again(staff_client):
    from billing.models import StripeEvent

    event = StripeEvent.objects.create(
        event_id="evt_1", type="unhandled.kind", payload={}, stripe_created_at=timezone.now(), last_error="boom"
    )
    client = staff_client("billing.view_stripeevent")
    assert not offers_action(client, "/admin/billing/stripeevent/", "reprocess")
    run_action(client, "/admin/billing/stripeevent/", "reprocess", event.pk)
    event.refresh_from_db()
    assert event.processed_at is None


def test_staff_who_may_only_view_billing_alerts_cannot_resolve_them(staff_client):
    from billing.models import BillingAlert

    alert = BillingAlert.objects.create(message="A refund could not claw back all its credits")
    client = staff_client("billing.view_billingalert")
    assert not offers_action(client, "/admin/billing/billingalert/", "resolve")
    run_action(client, "/admin/billing/billingalert/", "resolve", alert.pk)
    alert.refresh_from_db()
    assert alert.resolved_at is None


def test_resolving_alerts_keeps_when_each_was_first_resolved(admin_client):
    from billing.models import BillingAlert

    earlier = timezone.now() - timedelta(days=3)
    resolved = BillingAlert.objects.create(message="Handled last week", resolved_at=earlier)
    open_alert = BillingAlert.objects.create(message="A refund could not claw back all its credits")
    run_action(admin_client, "/admin/billing/billingalert/", "resolve", resolved.pk, open_alert.pk)
    resolved.refresh_from_db()
    open_alert.refresh_from_db()
    assert resolved.resolved_at == earlier
    assert open_alert.resolved_at is not None


def test_an_account_added_in_the_admin_can_be_granted_credits_from_its_page(admin_client, django_user_model):
    # It had no wallet: its page's "grant or adjust" link was a 404.
    password = "Quiet-Lake-4512-x"
    form = {"email": "added@example.com", "password1": password, "password2": password, "usable_password": "true"}
    admin_client.post("/admin/accounts/user/add/", form)
    added = django_user_model.objects.get(email="added@example.com")
    page = admin_client.get(f"/admin/accounts/user/{added.pk}/change/").content.decode()
    adjust = f"/admin/billing/wallet/{added.pk}/adjust/"
    assert adjust in page and admin_client.get(adjust).status_code == HTTPStatus.OK
    admin_client.post(adjust, {"amount": 50, "reason": "Welcome", "once": "t1"})
    assert wallet_balance(user_id=added.pk) == 50


def test_a_take_larger_than_the_balance_says_only_the_balance_was_taken(admin_client, user):
    wallet_adjust(user_id=user.pk, amount=541, reason="start")
    take = {"amount": -1000, "reason": "Chargeback", "once": "t1"}
    page = admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", take, follow=True)
    [message] = [str(message) for message in page.context["messages"]]
    assert message == f"Only 541 of the 1,000 credits asked were taken from {user}: the balance was 541."
    assert wallet_balance(user_id=user.pk) == 0


def test_a_take_from_an_empty_balance_says_nothing_was_taken(admin_client, user):
    take = {"amount": -1000, "reason": "Chargeback", "once": "t1"}
    page = admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", take, follow=True)
    [message] = [str(message) for message in page.context["messages"]]
    assert message == f"Nothing was taken from {user}: the balance is 0."


def fresh_form(client, user) -> dict:
    """What the adjust page sends: each load of the page (as Back does) brings a new token."""
    form = client.get(f"/admin/billing/wallet/{user.pk}/adjust/").context["form"]
    return {"once": form["once"].value()}


def test_the_same_adjustment_sent_again_from_a_fresh_page_asks_to_confirm_the_repeat(admin_client, user):
    grant = {"amount": 1000, "reason": "Goodwill"}
    admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {**grant, **fresh_form(admin_client, user)})
    again = admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {**grant, **fresh_form(admin_client, user)})
    assert again.status_code == HTTPStatus.OK
    [refused] = again.context["form"].errors["confirm"]
    assert refused.startswith("This repeats the adjustment of +1,000 credits with this reason written at ")
    assert 'type="checkbox" name="confirm"' in again.content.decode()
    assert wallet_balance(user_id=user.pk) == 1000 and LedgerEntry.objects.filter(user=user).count() == 1


def test_a_repeat_that_staff_confirm_is_written(admin_client, user):
    grant = {"amount": 1000, "reason": "Goodwill"}
    admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {**grant, **fresh_form(admin_client, user)})
    confirmed = {**grant, **fresh_form(admin_client, user), "confirm": "on"}
    assert admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", confirmed).status_code == HTTPStatus.FOUND
    assert wallet_balance(user_id=user.pk) == 2000


def test_a_take_that_stopped_at_zero_is_also_a_repeat_when_sent_again(admin_client, user):
    wallet_adjust(user_id=user.pk, amount=300, reason="start")
    take = {"amount": -1000, "reason": "Chargeback"}
    admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {**take, **fresh_form(admin_client, user)})
    wallet_adjust(user_id=user.pk, amount=500, reason="top-up")
    again = admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {**take, **fresh_form(admin_client, user)})
    assert again.context["form"].errors["confirm"] and wallet_balance(user_id=user.pk) == 500


def test_an_adjustment_outside_the_last_ten_minutes_is_not_a_repeat(admin_client, user):
    grant = {"amount": 1000, "reason": "Goodwill"}
    with time_machine.travel(timezone.now() - timedelta(minutes=11)):
        admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {**grant, **fresh_form(admin_client, user)})
    admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", {**grant, **fresh_form(admin_client, user)})
    assert wallet_balance(user_id=user.pk) == 2000


def test_the_adjust_page_shows_the_accounts_last_adjustment(admin_client, user):
    admin_client.post(
        f"/admin/billing/wallet/{user.pk}/adjust/",
        {"amount": 25, "reason": "Goodwill for the outage", **fresh_form(admin_client, user)},
    )
    page = admin_client.get(f"/admin/billing/wallet/{user.pk}/adjust/").content.decode()
    assert "Last adjustment: <strong>+25</strong>" in page and "Goodwill for the outage" in page


def test_processing_a_stripe_event_again_is_in_its_history(admin_client):
    from django.contrib.admin.models import LogEntry

    from billing.models import StripeEvent

    event = StripeEvent.objects.create(
        event_id="evt_1", type="unhandled.kind", payload={}, stripe_created_at=timezone.now(), last_error="boom"
    )
    run_action(admin_client, "/admin/billing/stripeevent/", "reprocess", event.pk)
    event.refresh_from_db()
    assert event.processed_at is not None
    [entry] = LogEntry.objects.filter(object_id=str(event.pk))
    assert entry.change_message == "Processed again by the admin action."


def test_staff_without_the_credits_permission_are_not_offered_the_grant_link(staff_client, user):
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    client = staff_client("accounts.view_user", "billing.view_wallet")
    account = client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    assert "Credit ledger" in account and "/adjust/" not in account
    assert "/adjust/" not in client.get("/admin/billing/wallet/").content.decode()


def test_staff_with_the_credits_permission_are_offered_the_grant_link(staff_client, user):
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    client = staff_client("accounts.view_user", "billing.view_wallet", "billing.adjust_credits")
    adjust = f"/admin/billing/wallet/{user.pk}/adjust/"
    assert adjust in client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    assert adjust in client.get("/admin/billing/wallet/").content.decode()


def test_a_ledger_row_of_a_job_links_to_the_job(admin_client, user):
    wallet_adjust(user_id=user.pk, amount=10, reason="funds")
    job_id = "6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a01"
    with transaction.atomic():
        debit_prepare(user_id=user.pk, amount=3, idempotency_key=f"debit:{job_id}", reference_id=job_id).run()
    page = admin_client.get("/admin/billing/ledgerentry/").content.decode()
    assert f'href="/admin/generation/job/{job_id}/change/"' in page


def test_billing_alerts_are_raised_by_the_system_not_added_or_deleted_by_staff(admin_client):
    page = admin_client.get("/admin/billing/billingalert/").content.decode()
    assert "/admin/billing/billingalert/add/" not in page
    assert admin_client.get("/admin/billing/billingalert/add/").status_code == HTTPStatus.FORBIDDEN


def test_webhook_deliveries_are_a_record_staff_cannot_delete(admin_client):
    page = admin_client.get("/admin/generation/webhookdelivery/").content.decode()
    assert 'value="delete_selected"' not in page


@pytest.mark.parametrize("amount", [100_001, -100_001, 2_000_000_000])
def test_an_adjustment_this_large_asks_to_confirm_it_first(admin_client, user, amount):
    wallet_adjust(user_id=user.pk, amount=200_000, reason="start")
    grant = {"amount": amount, "reason": "Typo?", **fresh_form(admin_client, user)}
    asked = admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", grant)
    [question] = asked.context["form"].errors["confirm"]
    assert question.startswith(f"{amount:+,d} credits is a large adjustment.") and LedgerEntry.objects.count() == 1
    confirmed = {**grant, **fresh_form(admin_client, user), "confirm": "on"}
    assert admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", confirmed).status_code == HTTPStatus.FOUND
    assert LedgerEntry.objects.count() == 2


def test_a_take_that_emptied_the_balance_sent_again_says_it_was_already_written(admin_client, user):
    wallet_adjust(user_id=user.pk, amount=300, reason="start")
    take = {"amount": -1000, "reason": "Chargeback", "once": "t1"}
    admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", take, follow=True)  # its message shown
    cache.delete(_token_key("t1", user_id_of(admin_client)))  # the guard's memory is gone: the ledger row's key knows
    confirmed = {**take, "confirm": "on"}  # asked whether to write it again, staff say yes: its row has the token
    again = admin_client.post(f"/admin/billing/wallet/{user.pk}/adjust/", confirmed, follow=True)
    [message] = [str(message) for message in again.context["messages"]]
    assert message == "That adjustment was already written, so nothing was done again."


def user_id_of(client) -> int:
    return int(client.session["_auth_user_id"])


def test_the_adjust_page_has_the_breadcrumbs_of_the_wallet_it_adjusts(admin_client, user):
    wallet = Wallet.objects.get_or_create(user=user)[0]
    page = admin_client.get(f"/admin/billing/wallet/{user.pk}/adjust/").content.decode()
    crumbs = re.search(r'<ol class="breadcrumbs">(.*?)</ol>', page, re.DOTALL).group(1)
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', crumbs) == [
        ("/admin/", "Home"),
        ("/admin/billing/", "Billing"),
        ("/admin/billing/wallet/", "Wallets"),
        (f"/admin/billing/wallet/{user.pk}/change/", str(wallet)),
    ]
    assert re.findall(r'<li aria-current="page">(.*?)</li>', crumbs) == ["Grant or adjust"]


def test_the_adjust_page_has_one_heading_naming_the_account(admin_client, user):
    page = admin_client.get(f"/admin/billing/wallet/{user.pk}/adjust/").content.decode()
    assert re.findall(r"<h1>(.*?)</h1>", page) == [f"Grant or adjust credits for {user.email}"]
