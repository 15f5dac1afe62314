"""Reads for generation: job listings with filters, one job, the CSV export rows."""

import csv
import re
import uuid
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
from flixly_site.parsers import parse_uuid
from generation.kinds import JOB_TYPES
from generation.models import ACTIVE_STATUSES, AiModel, Job, JobStatus, prompt_text

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
    ("prompt", "params"),  # what the job was asked (generation.models.prompt_text)
]


# A query string reads "+" as a space, so `?createdAfter=2026-03-16T12:00:00+01:00` sent unencoded (as curl
# sends it) arrives as "...12:00:00 01:00": a space between a time and an offset can only have been that "+".
LOST_PLUS = re.compile(r"^(.+[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def parse_when(value: str, field: str, *, through: bool = False) -> datetime:
    """An ISO date or date-time (UTC when no offset is given); `through`: the last moment of the day or of
    the second it names, so that a bound taken from an API timestamp (to the second) includes that second."""
    value = LOST_PLUS.sub(r"\1+\2", value)
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


def checked_choice(value: str | None, choices, field: str) -> str | None:
    if value is not None and value not in choices:
        raise ValidationFailed(details={field: [f"Must be one of {list(choices)}."]})
    return value


def _model_id(value: str | None) -> str | None:
    if value is not None and (len(value) > MODEL_ID_MAX_CHARS or "\x00" in value):
        raise ValidationFailed(details={"model": ["Not a model id: see GET /api/v1/models."]})
    return value


JOB_FILTERS = ("status", "type", "model")  # the query parameters job_filters reads


def job_filters(params: dict[str, str]) -> dict[str, str]:
    """The list's and the export's `status`, `type` and `model` filters, checked, as Job field lookups."""
    chosen = {
        "status": checked_choice(params.get("status"), JobStatus.values, "status"),
        "type": checked_choice(params.get("type"), JOB_TYPES, "type"),
        "model_id": _model_id(params.get("model")),
    }
    return {field: value for field, value in chosen.items() if value}


def jobs_for(*, user: User, filters: dict[str, str]) -> QuerySet[Job]:
    jobs = Job.objects.filter(user=user, **job_filters(filters))
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


def export_csv(*, user: User, start: datetime, end: datetime, filters: dict[str, str]) -> Iterator[bytes]:
    """The export as CSV chunks, in constant memory: PostgreSQL formats it with COPY; elsewhere Python does.
    `filters`: Job field lookups from job_filters()."""
    where = {"user_id": user.pk, "created_at__gte": start, "created_at__lte": end, **filters}
    rows = _copy_csv(where) if connection.vendor == "postgresql" else _python_csv(where)
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


# A cell that starts with one of these a spreadsheet runs as a formula: such a cell starts with a quote
# instead (OWASP, "CSV Injection"). Only the prompt is text the user wrote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# generation.models.prompt_text in SQL: the prompt, or a chat's user messages.
_PG_PROMPT = """COALESCE(params->>'prompt', array_to_string(ARRAY(
    SELECT m->>'content' FROM jsonb_array_elements(
        CASE jsonb_typeof(params->'messages') WHEN 'array' THEN params->'messages' ELSE '[]' END) AS m
    WHERE m->>'role' = 'user'), E'\\n\\n'))"""
_PG_FORMULA_SAFE = sql.SQL("CASE WHEN left(prompt, 1) IN ({}) THEN '''' || prompt ELSE prompt END").format(
    sql.SQL(", ").join(map(sql.Literal, FORMULA_STARTS))
)


def _pg_column(field: str):
    if field == "is_test":
        return sql.SQL("CASE WHEN is_test THEN 'true' ELSE 'false' END")
    if field.endswith("_at"):
        return sql.SQL(_PG_TIMESTAMP.format(column=field))
    if field == "params":
        return _PG_FORMULA_SAFE
    return sql.Identifier(field)


_PG_OPERATORS = {"": "=", "gte": ">=", "lte": "<="}  # the lookups export_csv's `where` uses: another is a KeyError


def _pg_condition(lookup: str, value: object) -> sql.Composed:
    """`created_at__gte` -> created_at >= <value>; COPY takes no parameters, so values go in as literals."""
    column, _, operator = lookup.partition("__")
    return sql.SQL("{} {} {}").format(sql.Identifier(column), sql.SQL(_PG_OPERATORS[operator]), sql.Literal(value))


def _copy_csv(where: dict) -> Generator[bytes]:
    columns = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(_pg_column(field), sql.Identifier(name)) for name, field in EXPORT_COLUMNS
    )
    conditions = sql.SQL(" AND ").join(_pg_condition(lookup, value) for lookup, value in where.items())
    query = sql.SQL(
        "COPY (SELECT {} FROM {}, LATERAL (SELECT {} AS prompt) AS asked WHERE {} ORDER BY created_at, id) "
        "TO STDOUT WITH (FORMAT csv, HEADER)"
    ).format(columns, sql.Identifier(JOB_TABLE), sql.SQL(_PG_PROMPT), conditions)
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        for block in copy:
            yield bytes(block)


def _python_csv(where: dict) -> Generator[bytes]:
    writer = csv.writer(_Echo())
    fields = [field for _, field in EXPORT_COLUMNS]
    yield writer.writerow([name for name, _ in EXPORT_COLUMNS]).encode()
    rows = Job.objects.filter(**where).order_by("created_at", "id").values_list(*fields).iterator(chunk_size=5000)
    for row in rows:
        yield writer.writerow([_csv_cell(field, value) for field, value in zip(fields, row, strict=True)]).encode()


def _csv_cell(field: str, value):
    if field == "params":  # what the job was asked
        prompt = prompt_text(value)
        return f"'{prompt}" if prompt.startswith(FORMULA_STARTS) else prompt
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(TIMESTAMP_CSV)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


# The statuses as literals, so the planner matches the partial index job_user_active even in a generic plan.
ACTIVE_COUNT_SQL = "SELECT count(*) FROM {} WHERE user_id = %s AND status IN ({}) AND id <> %s".format(  # noqa: S608
    JOB_TABLE, ", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
)


def jobs_active_count_query(*, user_id: int, other_than: uuid.UUID) -> tuple[str, list]:
    """The query (SQL, parameters) counting the account's queued and running jobs other than the job
    `other_than` (the one being submitted: the count is the same whether it runs before or after its row
    is written): on every submit, so in SQL (the ORM's query building cost more than the query), answered
    from a small partial index."""
    return ACTIVE_COUNT_SQL, [user_id, Job._meta.pk.get_db_prep_value(other_than, connection)]
