"""Paged lists are planned for their own filter values on PostgreSQL.

A statement a connection has prepared (DATABASE_PREPARED_STATEMENTS) runs, after five runs, on a generic plan made
for a typical value. For a filter on a rare value (?status=failed among an account's million completed jobs) that
plan walked every job of the account: 1.5 s a page instead of 2 ms (bench/README, the scale benchmark)."""

import pytest
from django.db import connection

from flixly_site.db import custom_plans
from flixly_site.pagination import keyset_page
from generation.models import Job, JobStatus
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
STATEMENT = "SELECT %s::int + 2"


def _prepared() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["SELECT $1::int + 2%"])
        return cursor.fetchone()[0]


def _run_often() -> None:
    with connection.cursor() as cursor:
        for _ in range(8):
            cursor.execute(STATEMENT, [40])


def test_statements_run_in_custom_plans_are_never_prepared_and_the_connection_keeps_preparing_others():
    with custom_plans():
        _run_often()
    assert _prepared() == 0
    _run_often()
    assert _prepared() == 1


def test_a_page_of_a_list_is_read_under_custom_plans():
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, context["connection"].connection.prepare_threshold))
        return execute(sql, params, many, context)

    user = UserFactory()
    with connection.execute_wrapper(spy):
        keyset_page(Job.objects.filter(user=user, status=JobStatus.FAILED), cursor=None, limit=20)
    assert [threshold for sql, threshold in seen if "generation_job" in sql] == [None]
    assert connection.connection.prepare_threshold == 5


def test_a_page_of_a_big_admin_list_is_read_under_custom_plans(client, django_user_model):
    staff = django_user_model.objects.create_superuser(email="staff@example.com", password="pw-staff-1234")
    client.force_login(staff)
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, context["connection"].connection.prepare_threshold))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        assert client.get("/admin/generation/job/?status=failed").status_code == 200
    rows = [threshold for sql, threshold in seen if sql.startswith('SELECT "generation_job"."id"')]
    assert rows == [None]
