"""The submit path's writes, run together: one round trip to PostgreSQL for a whole charge.

A submit debits the wallet, writes a ledger row, a job and its first event, and counts the account's
running jobs. Run one by one, with Django's save() compiling each INSERT, that was five round trips and
about a quarter of a submit's CPU. run_together() sends such statements in one round trip (psycopg's
pipeline mode; one after another on other databases), in order, so each still sees what the ones
before it did. An INSERT statement is built once per model and the values still go through each
field's own pre_save and get_db_prep_save, so defaults, auto_now_add, JSON and UUIDs are stored exactly
as save() would store them, on PostgreSQL and SQLite alike. Signals are not sent: use it only for
models without save() overrides or signal receivers.

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

from django.db import connection, models
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


Statement = models.Model | InsertFrom | Query


@functools.cache
def _insert_sql(
    model: type[models.Model], vendor: str, computed: tuple[tuple[str, str], ...], source: str
) -> tuple[str, tuple[models.Field, ...], tuple[str, ...]]:
    """The INSERT for the model (VALUES, or SELECT ... `source`), its parameter fields, and the attributes
    its RETURNING clause sets (the auto key, then the computed columns)."""
    meta = model._meta
    auto_pk = meta.pk if isinstance(meta.pk, models.AutoField) else None
    expressions = dict(computed)
    fields = tuple(
        f for f in meta.concrete_fields if f is not auto_pk and not f.generated and f.attname not in expressions
    )
    quote = connection.ops.quote_name
    returned = ([auto_pk.column] if auto_pk else []) + [meta.get_field(name).column for name in expressions]
    columns = [quote(f.column) for f in fields] + [quote(meta.get_field(name).column) for name in expressions]
    values = ["%s"] * len(fields) + list(expressions.values())
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "
    body = f"SELECT {', '.join(values)} {source}" if source else f"VALUES ({', '.join(values)})"
    tail = f" RETURNING {', '.join(quote(column) for column in returned)}" if returned else ""
    returned_attnames = ([auto_pk.attname] if auto_pk else []) + list(expressions)
    return head + body + tail, fields, tuple(returned_attnames)


def run_together(*statements: Statement) -> list[list[tuple]]:
    """Run the statements in order, in one round trip on PostgreSQL; return each one's rows.

    A model instance is INSERTed as a new row, its auto primary key set, as save(force_insert=True)
    would; an InsertFrom likewise, when its source finds its row. A query (SQL, parameters) runs as
    given. Rows are [] for a statement that returns none."""
    with ExitStack() as cursors:
        with _one_round_trip(len(statements)):
            sent = [_send(statement, cursors.enter_context(connection.cursor())) for statement in statements]
        return [_finish(statement, *sent_one) for statement, sent_one in zip(statements, sent, strict=True)]


@contextmanager
def _one_round_trip(statements: int) -> Iterator[None]:
    if statements < 2 or connection.vendor != "postgresql":
        yield
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def _send(statement: Statement, cursor: CursorWrapper) -> tuple[CursorWrapper, tuple[str, ...]]:
    """Send the statement; the cursor to read its rows from and the attributes they set, if any."""
    if isinstance(statement, tuple):
        cursor.execute(*statement)
        return cursor, ()
    insert = statement if isinstance(statement, InsertFrom) else InsertFrom(statement, ("", ()))
    instance, (source, source_params) = insert.instance, insert.source
    sql, fields, returned = _insert_sql(type(instance), connection.vendor, tuple(insert.computed.items()), source)
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    cursor.execute(sql, [*values, *source_params])
    return cursor, returned


def _finish(statement: Statement, cursor: CursorWrapper, returned: tuple[str, ...]) -> list[tuple]:
    rows = cursor.fetchall() if cursor.description is not None else []
    if isinstance(statement, tuple):
        return rows
    instance = statement.instance if isinstance(statement, InsertFrom) else statement
    inserted = rows[0] if returned and rows else None
    if inserted is not None or (not returned and cursor.rowcount):
        for attname, value in zip(returned, inserted or (), strict=True):
            setattr(instance, attname, value)
        instance._state.adding = False
        instance._state.db = connection.alias
    return rows
