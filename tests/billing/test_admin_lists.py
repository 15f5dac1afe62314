"""Staff read the credit ledger of a million rows, and the Stripe events, a page at a time: a list page reads
indexes, never a whole table (no DISTINCT for its filters, no count of every row, no LIKE for its search)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.html import escape

from billing.models import EntryKind, LedgerEntry, StripeEvent
from billing.selectors import CATEGORIES
from billing.services import wallet_adjust
from billing.stripe_events import HANDLERS
from tests.admin_lists import (
    ON_EACH_DATABASE,
    likes,
    list_page,
    messages_of,
    shown,
    sortable_columns,
    whole_table_reads,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LEDGER = "/admin/billing/ledgerentry/"
JOB_ID = "6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a01"
GRACE_JOB = "0b9d4a5e-2f31-4c4e-9d2a-8e6f3a1b7c20"


def make_entry(user, age: timedelta, key: str, **fields) -> LedgerEntry:
    fields = {"amount": -5, "kind": EntryKind.DEBIT, "balance_after": 10, **fields}
    entry = LedgerEntry.objects.create(user=user, idempotency_key=key, **fields)
    LedgerEntry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - age)
    return entry


@pytest.fixture
def entries(user) -> dict[str, LedgerEntry]:
    grace = UserFactory(email="grace@example.com")
    job = {"reference_type": "job", "reference_id": JOB_ID, "category": "images"}
    paid = {"amount": 100, "kind": EntryKind.PURCHASE, "reference_type": "stripe_payment_intent"}
    return {
        "debit": make_entry(user, timedelta(hours=1), f"debit:{JOB_ID}", **job),
        "purchase": make_entry(user, timedelta(days=3), "checkout:cs_test_1", reference_id="pi_123", **paid),
        "grace": make_entry(
            grace, timedelta(days=40), "debit:other", reference_type="job", reference_id=GRACE_JOB, category="videos"
        ),
        "old": make_entry(user, timedelta(days=400), "adjustment:t1", amount=5, kind=EntryKind.ADJUSTMENT),
    }


@ON_EACH_DATABASE
def test_the_ledger_reads_no_whole_table(admin_client, entries, big_tables, db_pass):
    big_tables("billing_ledgerentry")
    response, queries = list_page(admin_client, LEDGER)
    assert shown(response) == {entry.pk for entry in entries.values()}
    assert whole_table_reads(queries) == []
    assert "4 ledger entries" in response.content.decode()  # the planner's count, exact at this size


def test_the_ledger_offers_no_counts_by_filter_choice(admin_client, entries, big_tables):
    big_tables("billing_ledgerentry")
    response, queries = list_page(admin_client, f"{LEDGER}?_facets=1")  # each a count over the whole table
    assert whole_table_reads(queries) == [] and "Show counts" not in response.content.decode()


@pytest.mark.parametrize(
    ("created", "kinds"),
    [
        ("24h", {"debit"}),
        ("7d", {"debit", "purchase"}),
        ("30d", {"debit", "purchase"}),
        ("365d", {"debit", "purchase", "grace"}),
    ],
)
def test_each_created_range_lists_the_rows_written_in_it(admin_client, entries, created, kinds):
    response, queries = list_page(admin_client, f"{LEDGER}?created={created}")
    assert shown(response) == {entries[kind].pk for kind in kinds}
    assert whole_table_reads(queries) == []


def test_the_category_filter_offers_every_category_and_lists_its_rows(admin_client, entries):
    page = admin_client.get(LEDGER).content.decode()
    for category in CATEGORIES:
        assert f"?category__exact={category}" in page and f">{category.capitalize()}</a>" in page
    response, queries = list_page(admin_client, f"{LEDGER}?category__exact=videos")
    assert shown(response) == {entries["grace"].pk}
    assert whole_table_reads(queries) == []


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("Ada@Example.com", {"debit", "purchase", "old"}),
        (JOB_ID, {"debit"}),
        (JOB_ID.upper(), {"debit"}),
        ("pi_123", {"purchase"}),
    ],
)
def test_the_ledger_is_searched_by_e_mail_job_id_or_stripe_id(admin_client, entries, term, found):
    response, queries = list_page(admin_client, f"{LEDGER}?q={term}")
    assert shown(response) == {entries[kind].pk for kind in found}
    assert likes(queries) == [] and messages_of(response) == []


def test_one_accounts_ledger_is_searched_by_idempotency_key_too(admin_client, user, entries):
    response, queries = list_page(admin_client, f"{LEDGER}?user__id__exact={user.pk}&q=checkout:cs_test_1")
    assert shown(response) == {entries["purchase"].pk}
    assert likes(queries) == []


def test_an_idempotency_key_on_the_whole_ledger_says_to_open_the_accounts_ledger(admin_client, entries):
    response, queries = list_page(admin_client, f"{LEDGER}?q=checkout:cs_test_1")
    assert shown(response) == set() and likes(queries) == []
    [message] = messages_of(response)
    assert message.startswith("“checkout:cs_test_1” was not searched.") and "on one account's ledger" in message


def test_a_term_the_ledger_search_does_not_take_says_what_it_takes(admin_client, entries):
    response, queries = list_page(admin_client, f"{LEDGER}?q=Goodwill")
    assert shown(response) == set() and likes(queries) == []
    [message] = messages_of(response)
    assert message.startswith("“Goodwill” was not searched.") and "a Stripe id" in message
    assert escape(response.context["cl"].search_help_text) in response.content.decode()


def test_only_the_created_column_sorts_the_ledger(admin_client, entries):
    assert sortable_columns(admin_client.get(LEDGER)) == {"created_at"}


def test_an_accounts_credit_ledger_link_lists_its_rows_alone(admin_client, user, entries):
    link = f"{LEDGER}?user__id__exact={user.pk}"
    assert link in admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    response, queries = list_page(admin_client, link)
    assert shown(response) == {entries["debit"].pk, entries["purchase"].pk, entries["old"].pk}
    assert whole_table_reads(queries) == []


def test_a_wallets_all_ledger_rows_link_lists_its_rows_alone(admin_client, user):
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    wallet_adjust(user_id=UserFactory().pk, amount=10, reason="someone else")
    link = f"{LEDGER}?user__id__exact={user.pk}"
    assert link in admin_client.get(f"/admin/billing/wallet/{user.pk}/change/").content.decode()
    response, _ = list_page(admin_client, link)
    assert {row.user_id for row in response.context["cl"].result_list} == {user.pk}


# --- Stripe events -----------------------------------------------------------------------------------------


def stripe_event(event_id: str, event_type: str) -> StripeEvent:
    return StripeEvent.objects.create(event_id=event_id, type=event_type, payload={}, stripe_created_at=timezone.now())


def test_the_stripe_event_type_filter_offers_the_handled_types_and_reads_no_whole_table(admin_client):
    paid, _ = stripe_event("evt_1", "invoice.paid"), stripe_event("evt_2", "charge.refunded")
    page = admin_client.get("/admin/billing/stripeevent/").content.decode()
    for event_type in HANDLERS:
        assert f"?type__exact={event_type}" in page
    response, queries = list_page(admin_client, "/admin/billing/stripeevent/?type__exact=invoice.paid")
    assert shown(response) == {paid.pk}
    assert not [sql for sql in queries if "DISTINCT" in sql.upper()]


def test_a_stripe_event_is_found_by_its_whole_id_only(admin_client):
    event = stripe_event("evt_1Abc", "invoice.paid")
    response, queries = list_page(admin_client, "/admin/billing/stripeevent/?q=evt_1Abc")
    assert shown(response) == {event.pk} and likes(queries) == []
    assert shown(list_page(admin_client, "/admin/billing/stripeevent/?q=evt_1")[0]) == set()
