"""Reading the admin's big lists (jobs, the ledger, webhook deliveries) as staff do, with the SQL each page ran."""

import re
from http import HTTPStatus

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext

# Each runs on SQLite and, in the PostgreSQL pass, on PostgreSQL.
ON_EACH_DATABASE = pytest.mark.parametrize("db_pass", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])


def list_page(client, url: str) -> tuple[HttpResponse, list[str]]:
    """The page at `url` (it must answer 200, not send to ?e=1) and the SQL it ran."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == HTTPStatus.OK, response.get("Location")
    return response, [query["sql"] for query in queries.captured_queries]


def shown(response: HttpResponse) -> set:
    """The primary keys of the rows the list shows."""
    return {row.pk for row in response.context["cl"].result_list}


def messages_of(response: HttpResponse) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def whole_table_reads(queries: list[str]) -> list[str]:
    """The queries that read a whole table: a DISTINCT, or a COUNT whose table has no WHERE (a facet's
    COUNT(...) FILTER (WHERE ...) has one only before its FROM)."""
    return [sql for sql in queries if "DISTINCT" in sql.upper() or _counts_every_row(sql.upper())]


def _counts_every_row(sql: str) -> bool:
    return "COUNT(" in sql and "WHERE" not in sql.rsplit(" FROM ", 1)[-1]


def likes(queries: list[str]) -> list[str]:
    return [sql for sql in queries if " LIKE " in sql.upper()]


def analyze(*tables: str) -> None:
    """Refresh the planner's statistics of `tables`, as autovacuum does for a table that grew."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def sortable_columns(response: HttpResponse) -> set[str]:
    return set(re.findall(r'<th scope="col" class="sortable column-(\w+)', response.content.decode()))
