"""Reads for generation: job listings with filters, one job, the CSV export rows."""

import csv
from collections.abc import Generator, Iterator
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from psycopg import sql

from accounts.models import User
from flixly_site.errors import NotFound, ValidationFailed
from flixly_site.pagination import in_utc
from generation.models import ACTIVE_STATUSES, AiModel, Job, JobStatus
from generation.providers.base import JOB_TYPES

JOB_TABLE = Job._meta.db_table
EXPORT_MAX_DAYS = 90
MODEL_ID_MAX_CHARS = AiModel._meta.get_field("id").max_length
EXPORT_COLUMNS = [
    ("jobId", "id"),
    ("createdAt", "created_at"),
    ("startedAt", "started_at"),
    ("completedAt", "completed_at"),
    ("status", "status"),
    ("type", "type"),
    ("model", "model_id"),
    ("creditsCharged", "credits_charged"),
    ("creditsRefunded", "credits_refunded"),
    ("test", "is_test"),
    ("error", "error"),
]


def parse_when(value: str, field: str, *, through: bool = False) -> datetime:
    """An ISO date or date-time (UTC when no offset is given); `through`: the last moment of the day or of
    the second it names, so that a bound taken from an API timestamp (to the second) includes that second."""
    try:
        parsed = parse_datetime(value) if "T" in value or " " in value else None
        day = parse_date(value) if parsed is None and len(value) == 10 else None
    except ValueError:  # well formed but impossible, such as month 13 or hour 25
        parsed = day = None
    if parsed is None and day is not None:
        parsed = datetime.combine(day, datetime.max.time() if through else datetime.min.time())
    elif parsed is not None and through and parsed.microsecond == 0:
        parsed = parsed.replace(microsecond=999_999)
    moment = in_utc(parsed) if parsed is not None else None
    if moment is None:
        raise ValidationFailed(details={field: [f"'{value}' is not a valid ISO 8601 date or date-time."]})
    return moment


def _choice(value: str | None, choices, field: str) -> str | None:
    if value is not None and value not in choices:
        raise ValidationFailed(details={field: [f"Must be one of {list(choices)}."]})
    return value


def _model_id(value: str | None) -> str | None:
    if value is not None and (len(value) > MODEL_ID_MAX_CHARS or "\x00" in value):
        raise ValidationFailed(details={"model": ["Not a model id: see GET /api/v1/models."]})
    return value


def jobs_for(*, user: User, filters: dict[str, str]) -> QuerySet[Job]:
    jobs = Job.objects.filter(user=user)
    if status := _choice(filters.get("status"), JobStatus.values, "status"):
        jobs = jobs.filter(status=status)
    if job_type := _choice(filters.get("type"), JOB_TYPES, "type"):
        jobs = jobs.filter(type=job_type)
    if model := _model_id(filters.get("model")):
        jobs = jobs.filter(model_id=model)
    after = parse_when(filters["createdAfter"], "createdAfter") if filters.get("createdAfter") else None
    before = (
        parse_when(filters["createdBefore"], "createdBefore", through=True) if filters.get("createdBefore") else None
    )
    if after and before and after > before:
        raise ValidationFailed(details={"createdAfter": ["Must not be later than createdBefore."]})
    if after:
        jobs = jobs.filter(created_at__gte=after)
    if before:
        jobs = jobs.filter(created_at__lte=before)
    return jobs


def job_get(*, user: User, job_id) -> Job:
    from accounts.services import parse_uuid

    job_uuid = parse_uuid(job_id)
    job = Job.objects.filter(user=user, pk=job_uuid).first() if job_uuid else None
    if job is None:
        raise NotFound("No job with that id.")
    return job


def export_window(params: dict[str, str]) -> tuple[datetime, datetime]:
    to = params.get("to")
    until = parse_when(to, "to") if to else timezone.now()  # the window's length counts from `to` as written
    end = parse_when(to, "to", through=True) if to else until  # a date-only `to` includes that whole day
    try:
        start = parse_when(params["from"], "from") if params.get("from") else until - timedelta(days=30)
    except OverflowError:  # `to` in year 1: no 30 days before it
        raise ValidationFailed(details={"to": ["Must be a date after 0001-01-31."]}) from None
    if start > end:
        raise ValidationFailed(details={"from": ["The from date must be before the to date."]})
    if until - start > timedelta(days=EXPORT_MAX_DAYS):
        raise ValidationFailed(details={"to": [f"The window can be at most {EXPORT_MAX_DAYS} days."]})
    return start, end


TIMESTAMP_CSV = "%Y-%m-%dT%H:%M:%SZ"  # the API's form (flixly_site.pagination.iso_utc)
_PG_TIMESTAMP = """to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


EXPORT_CHUNK_BYTES = 64 * 1024


def export_csv(*, user: User, start: datetime, end: datetime) -> Iterator[bytes]:
    """The export as CSV chunks, in constant memory: PostgreSQL formats it with COPY; elsewhere Python does."""
    rows = _copy_csv(user.pk, start, end) if connection.vendor == "postgresql" else _python_csv(user, start, end)
    return _in_chunks(rows)


def _in_chunks(pieces: Generator[bytes]) -> Iterator[bytes]:
    # Both sources give one row at a time: written as they come, a million rows were a million socket
    # writes, and the server spent more time on those than on the rows.
    buffer = bytearray()
    try:
        for piece in pieces:
            buffer += piece
            if len(buffer) >= EXPORT_CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)
    finally:
        pieces.close()  # a client that hung up: end the COPY and free the cursor now, not whenever


def _pg_column(field: str):
    if field == "is_test":
        return sql.SQL("CASE WHEN is_test THEN 'true' ELSE 'false' END")
    if field.endswith("_at"):
        return sql.SQL(_PG_TIMESTAMP.format(column=field))
    return sql.Identifier(field)


def _copy_csv(user_id: int, start: datetime, end: datetime) -> Generator[bytes]:
    columns = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(_pg_column(field), sql.Identifier(name)) for name, field in EXPORT_COLUMNS
    )
    query = sql.SQL(
        "COPY (SELECT {} FROM {} WHERE user_id = {} AND created_at >= {} AND created_at <= {} "
        "ORDER BY created_at, id) TO STDOUT WITH (FORMAT csv, HEADER)"
    ).format(columns, sql.Identifier(Job._meta.db_table), sql.Literal(user_id), sql.Literal(start), sql.Literal(end))
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        for block in copy:
            yield bytes(block)


def _python_csv(user: User, start: datetime, end: datetime) -> Generator[bytes]:
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _ in EXPORT_COLUMNS]).encode()
    rows = (
        Job.objects.filter(user=user, created_at__gte=start, created_at__lte=end)
        .order_by("created_at", "id")
        .values_list(*(field for _, field in EXPORT_COLUMNS))
        .iterator(chunk_size=5000)
    )
    for row in rows:
        yield writer.writerow([_csv_cell(value) for value in row]).encode()


def _csv_cell(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(TIMESTAMP_CSV)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


# The statuses as literals, so the planner matches the partial index job_user_active even in a generic plan.
ACTIVE_COUNT_SQL = "SELECT count(*) FROM {} WHERE user_id = %s AND status IN ({})".format(  # noqa: S608
    JOB_TABLE, ", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
)


def jobs_active_count_query(*, user_id: int) -> tuple[str, list]:
    """The query (SQL, parameters) counting the account's queued and running jobs: on every submit, so
    in SQL (the ORM's query building cost more than the query), answered from a small partial index."""
    return ACTIVE_COUNT_SQL, [user_id]
