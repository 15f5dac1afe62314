"""The submit path's writes, run together: one round trip to PostgreSQL for a whole charge.

A submit debits the wallet, writes a ledger row, a job and its first event, and counts the account's
running jobs. Run one by one, with Django's save() compiling each INSERT, that was five round trips and
about a quarter of a submit's CPU. run_together() sends such statements in one round trip (psycopg's
pipeline mode; one after another on other databases), in order, so each still sees what the ones
before it did. Parts that need not see each other's writes can go further, as one Together: on
PostgreSQL that is one statement (a WITH of its INSERTs), which costs about half of what the same parts
cost as statements of their own. An INSERT statement is built once per model and the values still go
through each field's own pre_save and get_db_prep_save, so defaults, auto_now_add, JSON and UUIDs are
stored exactly as save() would store them, on PostgreSQL and SQLite alike. Signals are not sent: use it
only for models without save() overrides or signal receivers. Computed columns are read back with their
field's to_python, which suits the keys and numbers they hold here (not JSON or dates on SQLite).

A statement's error, such as a unique violation, still reaches the caller as Django's own exception,
nothing after the failed statement runs, and the caller's transaction or savepoint rolls back as usual.
psycopg may then also log the pipeline it could not close cleanly ("error ignored terminating"), which
says nothing the exception does not: PipelineExitNoise drops that line.
"""

import functools
import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from psycopg import Pipeline
from psycopg.errors import PipelineAborted

Query = tuple[str, Sequence]


class PipelineExitNoise(logging.Filter):
    """For the psycopg logger: drops its note that a pipeline closed as aborted after one of its statements
    failed (that failure is the exception the caller gets); every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) == 2 and isinstance(args[0], Pipeline) and isinstance(args[1], PipelineAborted))


@dataclass(frozen=True)
class InsertFrom:
    """INSERT the instance's row if `source` (SQL from FROM on, with %s parameters and no literal values:
    its text is part of a cache key) finds a row, with the columns in `computed` (attribute name -> SQL
    expression over the source) taken from that row: a ledger row whose balance_after is the balance its
    debit just wrote, say. The source finds at most one row; when it finds none, nothing is inserted.
    Once run, the instance holds the computed values and its new key."""

    instance: models.Model
    source: Query
    computed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Together:
    """Parts that run as one statement on PostgreSQL (a WITH of the INSERTs, the queries as scalar subqueries),
    so they all see the database as it was before any of them; elsewhere one by one, the queries first, to
    the same effect. So no part may read what another writes. Parts are model instances and InsertFroms to
    insert, and queries returning exactly one row of one column (a count, a sum). Each part has its own
    entry in run_together's result, as if it had run alone."""

    parts: tuple["Part", ...]

    def __init__(self, *parts: "Part"):
        object.__setattr__(self, "parts", parts)


Part = models.Model | InsertFrom | Query
Statement = Part | Together


@functools.cache
def _insert_sql(
    model: type[models.Model], vendor: str, computed: tuple[tuple[str, str], ...], source: str
) -> tuple[str, tuple[models.Field, ...], tuple[models.Field, ...]]:
    """The INSERT for the model (VALUES, or SELECT ... `source`), its parameter fields, and the fields its
    RETURNING clause reads back (the key, then the computed columns)."""
    meta = model._meta
    auto_pk = meta.pk if isinstance(meta.pk, models.AutoField) else None
    expressions = dict(computed)
    fields = tuple(
        f for f in meta.concrete_fields if f is not auto_pk and not f.generated and f.attname not in expressions
    )
    quote = connection.ops.quote_name
    returned = (meta.pk, *(meta.get_field(name) for name in expressions))
    columns = [quote(f.column) for f in fields] + [quote(f.column) for f in returned[1:]]
    values = ["%s"] * len(fields) + list(expressions.values())
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "
    body = f"SELECT {', '.join(values)} {source}" if source else f"VALUES ({', '.join(values)})"
    tail = f" RETURNING {', '.join(quote(f.column) for f in returned)}"
    return head + body + tail, fields, returned


def run_together(*statements: Statement) -> list[list[tuple]]:
    """Run the statements in order, in one round trip on PostgreSQL; return each one's rows (a Together's
    parts one entry each).

    A model instance is INSERTed as a new row, its auto primary key set, as save(force_insert=True)
    would; an InsertFrom likewise, when its source finds its row. A query (SQL, parameters) runs as
    given. Rows are [] for a statement that returns none."""
    db = connections[DEFAULT_DB_ALIAS]  # the proxy `connection` looks the wrapper up on every attribute
    if db.vendor != "postgresql":
        return [rows for statement in statements for rows in _one_by_one(db, statement)]
    return _run(db, statements)


def _one_by_one(db: BaseDatabaseWrapper, statement: Statement) -> list[list[tuple]]:
    """A statement alone; a Together's parts one by one, its queries first, so that they too see the database
    as it was before any of its inserts, as its one statement does on PostgreSQL."""
    if not isinstance(statement, Together):
        return _run(db, [statement])
    parts = statement.parts
    queries_first = sorted(range(len(parts)), key=lambda index: not isinstance(parts[index], tuple))
    rows = {index: _run(db, [parts[index]])[0] for index in queries_first}
    return [rows[index] for index in range(len(parts))]


def _run(db: BaseDatabaseWrapper, statements: Sequence[Statement]) -> list[list[tuple]]:
    with ExitStack() as cursors:
        with _one_round_trip(db, len(statements)):
            sent = [_send(db, statement, cursors.enter_context(db.cursor())) for statement in statements]
        finished = [_finish(db, statement, *sent_one) for statement, sent_one in zip(statements, sent, strict=True)]
    return [rows for per_part in finished for rows in per_part]


@contextmanager
def _one_round_trip(db: BaseDatabaseWrapper, statements: int) -> Iterator[None]:
    if statements < 2 or db.vendor != "postgresql":
        yield
        return
    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors, db.connection.pipeline():
        yield


def _as_insert(part: models.Model | InsertFrom) -> InsertFrom:
    return part if isinstance(part, InsertFrom) else InsertFrom(part, ("", ()))


def _insert_of(db: BaseDatabaseWrapper, part: models.Model | InsertFrom) -> tuple[Query, tuple]:
    """The part's INSERT with its values, and the fields its RETURNING reads back (the key first)."""
    insert = _as_insert(part)
    instance, (source, source_params) = insert.instance, insert.source
    computed = tuple(insert.computed.items())
    sql, fields, returned = _insert_sql(type(instance), db.vendor, computed, source)
    values = [field.get_db_prep_save(field.pre_save(instance, True), db) for field in fields]
    return (sql, [*values, *source_params]), returned


def _send(db: BaseDatabaseWrapper, statement: Statement, cursor: CursorWrapper) -> tuple[CursorWrapper, tuple]:
    """Send the statement; the cursor to read its rows from and what they hold (see _finish)."""
    if isinstance(statement, tuple):
        query, returned = statement, ()
    elif isinstance(statement, Together):
        query, returned = _together_query(db, statement)
    else:
        query, returned = _insert_of(db, statement)
    cursor.execute(*query)
    return cursor, returned


def _together_query(db: BaseDatabaseWrapper, together: Together) -> tuple[Query, tuple]:
    """WITH p0 AS (INSERT ... RETURNING key, ...), ... SELECT (query), ..., p0.*, ... : one row, each part's
    columns in turn (an insert's all NULL when its source found no row)."""
    ctes, selected, joins, returned, params, query_params = [], [], [], [], [], []
    for index, part in enumerate(together.parts):
        if isinstance(part, tuple):
            selected.append(f"({part[0]})")
            query_params.extend(part[1])
            returned.append(None)
            continue
        (sql, values), fields = _insert_of(db, part)
        ctes.append(f"p{index} AS ({sql})")
        selected.append(f"p{index}.*")
        joins.append(f"LEFT JOIN p{index} ON true")
        returned.append(fields)
        params.extend(values)
    with_clause = f"WITH {', '.join(ctes)} " if ctes else ""
    sql = f"{with_clause}SELECT {', '.join(selected)} FROM (SELECT) AS one {' '.join(joins)}"  # noqa: S608
    return (sql, [*params, *query_params]), tuple(returned)


def _finish(db: BaseDatabaseWrapper, statement: Statement, cursor: CursorWrapper, returned: tuple) -> list[list]:
    """The statement's rows, one list per part (a statement other than a Together is one part)."""
    rows = cursor.fetchall() if cursor.description is not None else []
    if isinstance(statement, tuple):
        return [rows]
    if isinstance(statement, Together):
        return _split(db, statement, rows[0], returned)
    if not rows:  # an InsertFrom whose source found no row
        return [rows]
    return [_mark_inserted(db, _as_insert(statement).instance, returned, rows[0])]


def _mark_inserted(
    db: BaseDatabaseWrapper, instance: models.Model, fields: Sequence[models.Field], row: tuple
) -> list[tuple]:
    """Set the returned values on the inserted instance; its rows, as Python values."""
    values = tuple(f.to_python(value) for f, value in zip(fields, row, strict=True))  # SQLite: a UUID's hex
    for model_field, value in zip(fields, values, strict=True):
        setattr(instance, model_field.attname, value)
    instance._state.adding = False
    instance._state.db = db.alias
    return [values]


def _split(db: BaseDatabaseWrapper, together: Together, row: tuple, returned: tuple) -> list[list]:
    """The Together's one row as each part's rows: a query's one value, an insert's returned columns (none
    when its key came back NULL: its source found no row)."""
    per_part, at = [], 0
    for part, fields in zip(together.parts, returned, strict=True):
        width = 1 if fields is None else len(fields)
        values, at = row[at : at + width], at + width
        if fields is None:
            per_part.append([values])
        elif values[0] is None:
            per_part.append([])
        else:
            per_part.append(_mark_inserted(db, _as_insert(part).instance, fields, values))
    return per_part
