"""The parallel-task check every submit runs stays one small index lookup however many jobs an account
has finished (PostgreSQL, in the generic plan a prepared statement ends up with)."""

import json
import logging
import uuid

import psycopg
import pytest
from django.db import connection

from generation.models import Job, JobStatus
from generation.selectors import ACTIVE_COUNT_SQL, jobs_active_count_query

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def add_jobs(user, count: int, status: str, **fields) -> None:
    base = {"user": user, "model_id": "local-image", "type": "TEXT_TO_IMAGE", "route": "local", "status": status}
    Job.objects.bulk_create([Job(**base, **fields) for _ in range(count)])


def generic_plan(sql: str, params: list) -> str:
    """The plan PostgreSQL uses for `sql` once it stops planning per execution (no fresh statistics)."""
    numbered = sql.replace("%s", "{}").format(*(f"${n}" for n in range(1, len(params) + 1)))
    connection.ensure_connection()
    # Client-side binding: PREPARE's own $n must reach the server as written.
    with psycopg.ClientCursor(connection.connection) as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE active_check AS {numbered}")
        try:
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE active_check({', '.join(['%s'] * len(params))})", params)
            return json.dumps(cursor.fetchone()[0])
        finally:
            cursor.execute("DEALLOCATE active_check")
            cursor.execute("RESET plan_cache_mode")


@pytest.fixture
def busy_account(user):
    add_jobs(user, 3000, JobStatus.COMPLETED)
    add_jobs(user, 2, JobStatus.QUEUED)
    add_jobs(user, 1, JobStatus.RUNNING)
    return user


def test_the_check_reads_the_unfinished_jobs_index_only(busy_account):
    plan = generic_plan(ACTIVE_COUNT_SQL, [busy_account.pk, uuid.uuid4()])
    assert "job_user_active" in plan
    assert "Seq Scan" not in plan


def test_it_counts_the_queued_and_running_jobs_other_than_the_one_submitted(busy_account):
    submitted = Job.objects.filter(user=busy_account, status=JobStatus.QUEUED).first()
    with connection.cursor() as cursor:
        cursor.execute(*jobs_active_count_query(user_id=busy_account.pk, other_than=uuid.uuid4()))
        assert cursor.fetchone() == (3,)
        cursor.execute(*jobs_active_count_query(user_id=busy_account.pk, other_than=submitted.pk))
        assert cursor.fetchone() == (2,)


def test_replays_on_postgresql_log_no_warning_from_psycopg(funded, raw_key, no_worker, caplog):
    from django.test import Client

    def submit():
        body = {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "A cat"}
        headers = {"Authorization": f"Bearer {raw_key}", "Idempotency-Key": "once"}
        return Client().post("/api/v1/generate", body, content_type="application/json", headers=headers)

    first = submit()
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        replays = [submit() for _ in range(5)]
    assert {again.json()["data"]["jobId"] for again in replays} == {first.json()["data"]["jobId"]}
    assert [record.getMessage() for record in caplog.records if record.name.startswith("psycopg")] == []
