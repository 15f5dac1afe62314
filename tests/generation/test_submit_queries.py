"""The parallel-task check every submit runs stays one small index lookup however many jobs an account
has finished (PostgreSQL, in the generic plan a prepared statement ends up with)."""

import json

import psycopg
import pytest
from django.db import connection

from generation.models import Job, JobStatus
from generation.selectors import ACTIVE_SQL, KEYED_SQL, jobs_active_or_keyed

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
    add_jobs(user, 1, JobStatus.RUNNING, idempotency_key="running-key")
    add_jobs(user, 1, JobStatus.COMPLETED, idempotency_key="done-key")
    return user


def test_the_check_reads_the_unfinished_jobs_index_only(busy_account):
    plan = generic_plan(ACTIVE_SQL, [busy_account.pk])
    assert "job_user_active" in plan
    assert "Seq Scan" not in plan


def test_with_an_idempotency_key_it_also_reads_that_key_from_its_unique_index(busy_account):
    plan = generic_plan(f"{ACTIVE_SQL} UNION {KEYED_SQL}", [busy_account.pk, busy_account.pk, "done-key"])
    assert "job_user_active" in plan
    assert "job_idempotency_per_user" in plan
    assert "Seq Scan" not in plan


def test_it_finds_the_unfinished_jobs_and_the_keyed_one_once_each(busy_account):
    rows = jobs_active_or_keyed(user_id=busy_account.pk, idempotency_key=None)
    assert sorted(status for _, status, _ in rows) == ["queued", "queued", "running"]
    rows = jobs_active_or_keyed(user_id=busy_account.pk, idempotency_key="running-key")
    assert sorted(status for _, status, _ in rows) == ["queued", "queued", "running"]
    rows = jobs_active_or_keyed(user_id=busy_account.pk, idempotency_key="done-key")
    assert sorted((status, key) for _, status, key in rows) == [
        ("completed", "done-key"),
        ("queued", None),
        ("queued", None),
        ("running", "running-key"),
    ]
