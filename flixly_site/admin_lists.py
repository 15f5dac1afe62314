"""The admin's lists of big tables (jobs, the ledger, webhook deliveries), built so a page reads a few index
entries however many rows the table holds. A scale trial (a million jobs) found each page reading whole tables:
date_hierarchy's SELECT DISTINCT of days, a filter's SELECT DISTINCT of a column's values, a COUNT(*) of every
row, sorts no index serves, and a search of icontains over ids and a join to the accounts."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.validators import validate_email
from django.db import connections
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.functional import cached_property

from flixly_site.db import custom_plans

# Rows: a smaller table is counted, which is cheap and exact; a bigger one is estimated. An estimate under it
# is never trusted, as a table whose statistics are missing or stale (a bulk load not yet analysed) looks small.
ESTIMATE_FROM = 10_000


class EstimatedCountPaginator(Paginator):
    """Counts a filtered or searched list exactly (its page count must be right), and a whole big table from
    the planner's statistics: the pages then run to about the right number, as the table only grows."""

    estimated = False  # the page says "About N" when it is (templates/admin/pagination.html)

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = table_estimate(queryset)
            if estimate is not None and estimate >= ESTIMATE_FROM:
                self.estimated = True
                return estimate
        return queryset.count()


def table_estimate(queryset: QuerySet) -> int | None:
    """The number of rows in the queryset's table as its last ANALYZE found them; None without statistics."""
    connection = connections[queryset.db]
    table = queryset.model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # -1 until the table is first analysed (autovacuum does it as the table grows)
            sql = "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)"
            cursor.execute(sql, [connection.ops.quote_name(table)])
            return (cursor.fetchone() or [None])[0]
        if connection.vendor == "sqlite":
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")  # made by the first ANALYZE
            if cursor.fetchone() is None:
                return None
            # One row per index, each starting with its number of rows (a partial index has fewer).
            cursor.execute("SELECT MAX(CAST(stat AS INTEGER)) FROM sqlite_stat1 WHERE tbl = %s", [table])
            return cursor.fetchone()[0]
    return None


RECENT = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "365d": ("Last 365 days", timedelta(days=365)),
}


class CreatedFilter(admin.SimpleListFilter):
    """Rows made recently: a range from now back, which an index on created_at serves. It replaces
    date_hierarchy, whose links were read from every row (SELECT DISTINCT of each day, 741 ms)."""

    title = "created"
    parameter_name = "created"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(value, label) for value, (label, _) in RECENT.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() not in RECENT:
            return None
        _, age = RECENT[self.value()]
        return queryset.filter(created_at__gte=timezone.now() - age)


class ChoicesFilter(admin.SimpleListFilter):
    """A filter on `field` offering the code's own fixed `options` (value, label). Without one, a field with no
    choices gets AllValuesFieldListFilter, which reads SELECT DISTINCT over the whole table on every page."""

    field: str
    options: Sequence[tuple[str, str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.parameter_name = f"{cls.field}__exact"  # the old filter's: links and bookmarks made for it still work

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Sequence[tuple[str, str]]:
        return self.options

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        # Any value filters, not only those offered: a link may name one the code no longer writes.
        return queryset.filter(**{self.field: self.value()}) if self.value() else None


class SortableOnlyChangeList(ChangeList):
    """Sorts by the columns of sortable_by alone: Django's own list also sorts by any column a link names
    (?o=2), and links made before sortable_by was narrowed would still sort a million rows."""

    def get_ordering(self, request: HttpRequest, queryset: QuerySet) -> list:
        asked = self.params.get(ORDER_VAR, "").split(".")
        kept = ".".join(column for column in asked if self._may_sort(column))
        if kept:
            self.params[ORDER_VAR] = kept
        else:
            self.params.pop(ORDER_VAR, None)  # the default order, not none at all
        return super().get_ordering(request, queryset)

    def get_results(self, request: HttpRequest) -> None:
        # A filter may name a rare value (failed jobs among a million): the page is planned for it, not for a
        # typical one (flixly_site.db.custom_plans), so it is read here rather than later by the template.
        with custom_plans():
            super().get_results(request)
            self.result_list = list(self.result_list)

    def _may_sort(self, column: str) -> bool:
        index = column.removeprefix("-")
        return (
            index.isdigit()
            and int(index) < len(self.list_display)
            and self.list_display[int(index)] in self.sortable_by
        )


def list_time(moment: datetime) -> str:
    """A time as a list shows a DateTimeField column, for a column that shows it with something else."""
    return formats.localize(timezone.template_localtime(moment))


def is_email(term: str) -> bool:
    try:
        validate_email(term)
    except ValidationError:
        return False
    return True


def accounts_with_email(address: str) -> list[int]:
    """The id of the account with this e-mail address, in any case: read from its lower(email) index. Read
    first, not as a subquery: the planner cannot tell one account from many, and sorted all 300k of a busy
    account's jobs to show the newest 100 (387 ms, against 2 ms for user_id = its id)."""
    users = get_user_model().objects.alias(email_lower=Lower("email"))
    return list(users.filter(email_lower=address.lower()).values_list("pk", flat=True))


class BigTableAdmin(admin.ModelAdmin):
    """A list of a table too big to read whole on a page: no full count, no facet counts, only exact searches.
    An e-mail address finds its account's rows; a subclass says what else a term matches in search_by, and
    what search takes in search_help_text."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False  # a second count, of the whole table
    show_facets = admin.ShowFacets.NEVER  # a count of each filter choice, over the whole table
    search_fields = ("pk",)  # shows the search box; search_by decides what a term matches

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SortableOnlyChangeList

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # Every big table's rows belong to an account: an e-mail address finds that account's rows.
        found = queryset.filter(user_id__in=accounts_with_email(term)) if is_email(term) else None
        found = found if found is not None else self.search_by(request, queryset, term)
        if found is None:
            messages.info(request, f"“{term}” was not searched. {self.search_help_text}")
            return queryset.none(), False
        return found, False

    def search_by(self, request: HttpRequest, queryset: QuerySet, term: str) -> QuerySet | None:
        """The rows a term other than an e-mail address finds, by an exact match an index serves; None when it is
        nothing this list takes (here: nothing but e-mail addresses)."""
        return None
