"""The paginator of the admin's big lists counts what staff filtered exactly, and a whole big table from the
planner's statistics: a COUNT(*) of a million rows took 339 ms on every page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from flixly_site.admin_lists import EstimatedCountPaginator
from tests.admin_lists import ON_EACH_DATABASE, analyze, whole_table_reads
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def counted(queryset) -> tuple[int, list[str]]:
    """The paginator's count of `queryset`, and the SQL it ran."""
    with CaptureQueriesContext(connection) as queries:
        count = EstimatedCountPaginator(queryset.order_by("pk"), 100).count
    return count, [query["sql"] for query in queries.captured_queries]


@ON_EACH_DATABASE
def test_a_whole_big_table_is_counted_from_the_planners_statistics(big_tables, db_pass):
    UserFactory.create_batch(3)
    big_tables("accounts_user")
    count, queries = counted(User.objects.all())
    assert count == 3 and whole_table_reads(queries) == []


@ON_EACH_DATABASE
def test_a_filtered_list_is_counted_exactly_however_big_the_table(big_tables, db_pass):
    users = UserFactory.create_batch(3)
    big_tables("accounts_user")
    User.objects.filter(pk=users[0].pk).delete()  # the statistics still say 3
    assert counted(User.objects.filter(email__endswith="@example.com"))[0] == 2


def test_a_table_below_the_threshold_is_counted_exactly():
    UserFactory.create_batch(3)
    analyze("accounts_user")
    count, queries = counted(User.objects.all())
    assert count == 3 and any("COUNT(" in sql for sql in queries)


def test_a_table_without_statistics_is_counted_exactly(big_tables):
    UserFactory.create_batch(3)  # never analysed: a new database's tables have no statistics
    assert counted(User.objects.all())[0] == 3
