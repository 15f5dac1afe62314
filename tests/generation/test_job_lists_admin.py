"""Staff find jobs and webhook deliveries among millions: a list page reads indexes, never a whole table (no
DISTINCT for its filters, no count of every row, no LIKE for its search, no sort an index cannot serve)."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone
from django.utils.html import escape

from generation.kinds import TYPE_LABELS
from generation.models import Job, WebhookDelivery
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

JOBS = "/admin/generation/job/"
DELIVERIES = "/admin/generation/webhookdelivery/"


def make_job(user, age: timedelta, **fields) -> Job:
    fields = {"model_id": "local-image", "type": "TEXT_TO_IMAGE", "route": "local", **fields}
    job = Job.objects.create(user=user, **fields)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - age)
    return job


@pytest.fixture
def jobs(user) -> dict[str, Job]:
    grace = UserFactory(email="grace@example.com")
    return {
        "image": make_job(user, timedelta(hours=1)),
        "video": make_job(user, timedelta(days=3), model_id="local-video", type="TEXT_TO_VIDEO"),
        "chat": make_job(grace, timedelta(days=40), model_id="local-chat", type="CHAT"),
    }


@ON_EACH_DATABASE
def test_the_jobs_list_reads_no_whole_table(admin_client, jobs, big_tables, db_pass):
    big_tables("generation_job")
    response, queries = list_page(admin_client, JOBS)
    assert shown(response) == {job.pk for job in jobs.values()}
    assert whole_table_reads(queries) == []
    assert "About 3 jobs" in response.content.decode()  # the planner's count, said to be one


def test_a_filtered_list_counts_its_rows_exactly_and_says_no_about(admin_client, jobs, big_tables):
    big_tables("generation_job")
    response, _ = list_page(admin_client, f"{JOBS}?type__exact=CHAT")
    page = response.content.decode()
    assert "1 job" in page and "About" not in page


@pytest.mark.parametrize("url", [JOBS, DELIVERIES])
def test_the_lists_offer_no_counts_by_filter_choice(admin_client, deliveries, big_tables, url):
    big_tables("generation_job", "generation_webhookdelivery")
    response, queries = list_page(admin_client, f"{url}?_facets=1")  # each a count over the whole table
    assert whole_table_reads(queries) == [] and "Show counts" not in response.content.decode()


@pytest.mark.parametrize(
    ("created", "kinds"),
    [("24h", {"image"}), ("7d", {"image", "video"}), ("30d", {"image", "video"}), ("365d", {"image", "video", "chat"})],
)
def test_each_created_range_lists_the_jobs_made_in_it(admin_client, jobs, created, kinds):
    response, queries = list_page(admin_client, f"{JOBS}?created={created}")
    assert shown(response) == {jobs[kind].pk for kind in kinds}
    assert whole_table_reads(queries) == []


def test_the_created_filter_offers_recent_ranges_not_dates(admin_client, jobs):
    page = admin_client.get(JOBS).content.decode()
    for label in ("Last 24 hours", "Last 7 days", "Last 30 days", "Last 365 days"):
        assert label in page
    assert "created_at__year" not in page  # no date hierarchy: its years came from the whole table


def test_the_type_filter_offers_every_job_type_by_its_name(admin_client, jobs):
    page = admin_client.get(JOBS).content.decode()
    for job_type, label in TYPE_LABELS.items():
        assert f"?type__exact={job_type}" in page and label in page


def test_the_type_filter_lists_the_jobs_of_that_type(admin_client, jobs):
    response, queries = list_page(admin_client, f"{JOBS}?type__exact=TEXT_TO_VIDEO")
    assert shown(response) == {jobs["video"].pk}
    assert whole_table_reads(queries) == []


def test_a_jobs_full_id_finds_it(admin_client, jobs):
    response, queries = list_page(admin_client, f"{JOBS}?q={jobs['video'].pk}")
    assert shown(response) == {jobs["video"].pk}
    assert likes(queries) == []


def test_an_accounts_e_mail_address_finds_its_jobs_in_any_case(admin_client, jobs):
    response, queries = list_page(admin_client, f"{JOBS}?q=+Ada@Example.COM+")
    assert shown(response) == {jobs["image"].pk, jobs["video"].pk}
    assert likes(queries) == []


def test_a_models_id_finds_its_jobs(admin_client, jobs):
    response, queries = list_page(admin_client, f"{JOBS}?q=local-chat")
    assert shown(response) == {jobs["chat"].pk}
    assert likes(queries) == []


@pytest.mark.parametrize("term", ["ada", "6f1c1c7e", "local", "a@b@c"])
def test_a_term_the_search_does_not_take_finds_nothing_and_says_what_it_takes(admin_client, jobs, term):
    response, queries = list_page(admin_client, f"{JOBS}?q={term}")
    assert shown(response) == set()
    [message] = messages_of(response)
    assert message.startswith(f"“{term}” was not searched.") and "a job's full id" in message
    assert likes(queries) == []


def test_the_search_box_says_what_it_takes(admin_client, jobs):
    response = admin_client.get(JOBS)
    help_text = response.context["cl"].search_help_text
    assert "a job's full id, an account's e-mail address or a model's id" in help_text
    assert escape(help_text) in response.content.decode()


def test_only_the_created_column_sorts_jobs(admin_client, jobs):
    assert sortable_columns(admin_client.get(JOBS)) == {"created_at"}


def test_the_created_column_sorts_the_oldest_jobs_first(admin_client, jobs):
    page = admin_client.get(JOBS).content.decode()
    [oldest_first] = re.findall(r'column-created_at.*?<a role="button" href="([^"]+)"', page, re.DOTALL)
    response, _ = list_page(admin_client, JOBS + unescape(oldest_first))
    assert [job.pk for job in response.context["cl"].result_list] == [jobs[k].pk for k in ("chat", "video", "image")]


def test_an_old_link_sorting_jobs_by_account_lists_the_newest_first(admin_client, jobs):
    response, _ = list_page(admin_client, f"{JOBS}?o=-2")  # the user column, sortable until now
    newest_first = [jobs["image"].pk, jobs["video"].pk, jobs["chat"].pk]
    assert [job.pk for job in response.context["cl"].result_list] == newest_first


def test_an_accounts_page_links_to_its_jobs_alone(admin_client, user, jobs):
    link = f"{JOBS}?user__id__exact={user.pk}"
    assert link in admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    response, queries = list_page(admin_client, link)
    assert shown(response) == {jobs["image"].pk, jobs["video"].pk}
    assert whole_table_reads(queries) == []


def test_failing_a_job_from_a_filtered_list_still_refunds_it(admin_client, user):
    from billing.services import wallet_balance
    from generation.models import JobStatus
    from tests.admin_actions import run_action

    job = make_job(user, timedelta(minutes=1), credits_charged=5)
    run_action(admin_client, f"{JOBS}?created=24h&q={user.email}", "fail_and_refund", job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and wallet_balance(user_id=user.pk) == 5


# --- webhook deliveries ------------------------------------------------------------------------------------


def make_delivery(job: Job, event: str, age: timedelta = timedelta(0)) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        user=job.user, job=job, event=event, url="https://example.com/h", body="{}"
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - age)
    return delivery


@pytest.fixture
def deliveries(jobs) -> dict[str, WebhookDelivery]:
    return {
        "completed": make_delivery(jobs["image"], "job.completed"),
        "failed": make_delivery(jobs["video"], "job.failed", timedelta(days=3)),
        "grace": make_delivery(jobs["chat"], "job.completed", timedelta(days=40)),
    }


@ON_EACH_DATABASE
def test_the_deliveries_list_reads_no_whole_table(admin_client, deliveries, big_tables, db_pass):
    big_tables("generation_webhookdelivery")
    response, queries = list_page(admin_client, DELIVERIES)
    assert shown(response) == {delivery.pk for delivery in deliveries.values()}
    assert whole_table_reads(queries) == []


def test_the_event_filter_offers_every_event_and_lists_its_deliveries(admin_client, deliveries):
    page = admin_client.get(DELIVERIES).content.decode()
    for event in ("job.completed", "job.failed", "job.refunded", "key.rolled", "key.expiring", "credits.low", "ping"):
        assert f"?event__exact={event}" in page
    response, queries = list_page(admin_client, f"{DELIVERIES}?event__exact=job.failed")
    assert shown(response) == {deliveries["failed"].pk}
    assert whole_table_reads(queries) == []


def test_the_created_filter_lists_the_recent_deliveries(admin_client, deliveries):
    response, _ = list_page(admin_client, f"{DELIVERIES}?created=7d")
    assert shown(response) == {deliveries["completed"].pk, deliveries["failed"].pk}


@pytest.mark.parametrize(
    ("term", "found"),
    [
        (lambda d: d["failed"].pk, "failed"),  # the delivery's id
        (lambda d: d["failed"].job_id, "failed"),  # its job's id
        (lambda d: "GRACE@example.com", "grace"),
    ],
)
def test_a_delivery_is_found_by_its_id_its_jobs_id_or_its_accounts_e_mail(admin_client, deliveries, term, found):
    response, queries = list_page(admin_client, f"{DELIVERIES}?q={term(deliveries)}")
    assert shown(response) == {deliveries[found].pk}
    assert likes(queries) == []


def test_a_term_the_deliveries_search_does_not_take_says_what_it_takes(admin_client, deliveries):
    response, queries = list_page(admin_client, f"{DELIVERIES}?q=example.com")
    assert shown(response) == set() and likes(queries) == []
    [message] = messages_of(response)
    assert message.startswith("“example.com” was not searched.") and "its job's full id" in message


def test_only_the_created_column_sorts_deliveries(admin_client, deliveries):
    assert sortable_columns(admin_client.get(DELIVERIES)) == {"created_at"}
