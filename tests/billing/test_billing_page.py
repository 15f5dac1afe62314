"""The billing page's chart of credits spent per day: readable without hovering, and to a screen reader."""

import re
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
import time_machine

from billing.models import EntryKind, LedgerEntry

pytestmark = pytest.mark.django_db

TODAY = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def spend(user, amount: int, when: datetime, n: int) -> None:
    with time_machine.travel(when, tick=False):
        LedgerEntry.objects.create(
            user=user, amount=-amount, kind=EntryKind.DEBIT, balance_after=0, idempotency_key=f"spend-{n}"
        )


@pytest.fixture
def billing_page(client, user):
    def load() -> str:
        client.force_login(user)
        with time_machine.travel(TODAY, tick=False):
            return client.get("/billing/").content.decode()

    return load


def chart_of(page: str) -> str:
    start = page.index('id="chart-heading"')
    return page[start : page.index("</section>", start)]


def test_the_chart_names_its_first_and_last_days_and_its_highest_value(user, billing_page):
    # It showed bars only: no dates, no scale, the numbers only on hover.
    spend(user, 30, datetime(2026, 3, 10, 9, 0, tzinfo=UTC), 1)
    spend(user, 4, datetime(2026, 3, 19, 9, 0, tzinfo=UTC), 2)
    chart = chart_of(billing_page())
    assert re.search(r'class="chart-days"[^>]*>\s*<span>Feb 19</span>\s*<span>Mar 20</span>', chart)
    assert re.search(r'class="chart-scale"[^>]*>\s*<span>30</span>\s*<span>0</span>', chart)
    assert "Most in one day: 30 credits, on Mar 10." in chart


def test_the_chart_has_a_table_of_every_day_for_screen_readers(user, billing_page):
    spend(user, 30, datetime(2026, 3, 10, 9, 0, tzinfo=UTC), 1)
    chart = chart_of(billing_page())
    table = re.search(r'<div class="visually-hidden"><table>(.*?)</table>', chart, re.S).group(1)
    assert "<caption>Credits spent per day, Feb 19 to Mar 20</caption>" in table
    rows = re.findall(r"<tr><td>([\d-]+)</td><td>(\d+)</td></tr>", table)
    assert len(rows) == 30
    assert rows[0] == ("2026-02-19", "0") and ("2026-03-10", "30") in rows
    assert re.search(r'<svg class="chart"[^>]*aria-hidden="true"', chart)  # the table stands in for it


def test_an_account_that_spent_nothing_is_told_so_instead_of_an_empty_chart(billing_page):
    chart = chart_of(billing_page())
    assert "No credits spent in the last 30 days." in chart
    assert "<svg" not in chart


def test_opening_the_portal_address_directly_goes_back_to_billing(client, user):
    # A GET (a bookmark, a reload, a typed URL) showed the browser's bare "HTTP ERROR 405".
    client.force_login(user)
    response = client.get("/billing/portal/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/billing/"


def test_the_portal_address_still_needs_a_login(client):
    assert client.get("/billing/portal/")["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", ["/billing/packs/1/buy/", "/billing/plans/pro/subscribe/"])
def test_reloading_a_buy_or_subscribe_address_goes_back_to_billing(client, user, stripe_fake, path):
    # A reload after the post, or a bookmark of the address, showed the browser's bare "HTTP ERROR 405".
    client.force_login(user)
    response = client.get(path)
    assert (response.status_code, response["Location"]) == (HTTPStatus.FOUND, "/billing/")
    assert stripe_fake.requests == []  # a GET starts no checkout


@pytest.mark.parametrize("path", ["/billing/packs/1/buy/", "/billing/plans/pro/subscribe/"])
def test_a_buy_or_subscribe_address_answers_other_methods_with_405(client, user, path):
    client.force_login(user)
    response = client.put(path)
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


@pytest.mark.parametrize("path", ["/billing/packs/1/buy/", "/billing/plans/pro/subscribe/"])
def test_buying_and_subscribing_still_need_the_csrf_token(user, stripe_fake, path):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(path).status_code == HTTPStatus.FORBIDDEN
    assert stripe_fake.requests == []


@pytest.mark.parametrize(
    ("status", "says"),
    [
        ("active", "Subscription active, renews 2026-04-01."),
        ("trialing", "Subscription trialing, renews 2026-04-01."),
        ("past_due", "The last payment failed: update your card in the customer portal, or the plan ends."),
        ("incomplete", "Waiting for the first payment."),
        ("canceled", "Subscription canceled."),
        ("unpaid", "Subscription unpaid: the plan has ended."),
    ],
)
def test_the_billing_page_says_renews_only_of_a_live_subscription(client, user, status, says):
    from billing.models import Wallet

    Wallet.objects.update_or_create(
        user=user, defaults={"subscription_status": status, "current_period_end": datetime(2026, 4, 1, tzinfo=UTC)}
    )
    client.force_login(user)
    page = client.get("/billing/").content.decode()
    assert says in page
    assert status in ("active", "trialing") or "renews" not in page


def test_the_chart_counts_the_first_days_spend_from_midnight_and_not_the_day_before(user, billing_page):
    spend(user, 7, datetime(2026, 2, 19, 0, 0, tzinfo=UTC), 1)  # the chart's first day, at midnight
    spend(user, 50, datetime(2026, 2, 18, 23, 59, 59, tzinfo=UTC), 2)  # the day before: not shown
    chart = chart_of(billing_page())
    assert "<tr><td>2026-02-19</td><td>7</td></tr>" in chart
    assert "Most in one day: 7 credits, on Feb 19." in chart


def test_the_chart_bounds_its_rows_by_time_so_the_ledger_index_serves_it(user, client):
    # `created_at__date__gte` cast every row's time to a date: PostgreSQL read the account's whole ledger.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(user)
    with CaptureQueriesContext(connection) as queries, time_machine.travel(TODAY, tick=False):
        client.get("/billing/")
    chart_query = next(q["sql"] for q in queries.captured_queries if "SUM(" in q["sql"] and "GROUP BY" in q["sql"])
    where = chart_query.split(" WHERE ", 1)[1].split(" GROUP BY ", 1)[0]
    assert "cast_date" not in where and "::date" not in where and "AT TIME ZONE" not in where


def ledger_rows(user, count: int) -> None:
    for n in range(count):
        when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).replace(minute=n % 60, second=n // 60)
        spend(user, n + 1, when, 100 + n)


def history_of(page: str) -> str:
    start = page.index('id="ledger-heading"')
    return page[start : page.index("</section>", start)]


def test_the_credit_history_pages_back_with_older_and_newest_links(client, user, billing_page):
    ledger_rows(user, 25)
    history = history_of(billing_page())
    assert history.count('data-label="When"') == 20
    assert "Page " not in history  # no count of the whole ledger, which grows without end
    older = re.search(r'href="\?cursor=([^"]+)"[^>]*>Older</a>', history).group(1)
    with time_machine.travel(TODAY, tick=False):
        second = history_of(client.get(f"/billing/?cursor={older}").content.decode())
    assert second.count('data-label="When"') == 5
    assert '">-1</td>' in second  # the oldest movement, 1 credit
    assert re.search(r'href="/billing/"[^>]*>Newest</a>', second)
    assert ">Older</a>" not in second


def test_a_credit_history_link_that_no_longer_works_shows_the_newest_page_and_says_so(client, user, billing_page):
    ledger_rows(user, 3)
    client.force_login(user)
    with time_machine.travel(TODAY, tick=False):
        page = client.get("/billing/?cursor=garbled").content.decode()
    assert history_of(page).count('data-label="When"') == 3
    assert "That page link no longer works, so here are your newest credit movements." in page


def test_the_billing_page_never_counts_the_whole_ledger(client, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ledger_rows(user, 3)
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        client.get("/billing/")
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"] and "billing_ledgerentry" in q["sql"]]
    assert not counts
