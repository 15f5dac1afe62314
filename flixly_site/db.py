"""Cheaper INSERTs for the rows the submit path writes on every request (a job, its event, a ledger row).

Django's save() compiles the INSERT statement for every row: on a model of twenty-odd columns that was
about a quarter of a submit's CPU. Here the statement is built once per model and the values still go
through each field's own pre_save and get_db_prep_save, so defaults, auto_now_add, JSON and UUIDs are
stored exactly as save() would store them, on PostgreSQL and SQLite alike. Signals are not sent:
use it only for models without save() overrides or signal receivers.

Several rows, and a query to read after them, go to PostgreSQL in one round trip (psycopg's pipeline
mode). A statement's error, such as a unique violation, still reaches the caller as Django's own
exception, nothing after the failed statement runs, and the caller's transaction or savepoint rolls back
as usual. psycopg may then also log the pipeline it could not close cleanly ("error ignored
terminating"), which says nothing the exception does not: PipelineExitNoise drops that line.
"""

import functools
import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from django.db import connection, models
from django.db.backends.utils import CursorWrapper
from psycopg import Pipeline
from psycopg.errors import PipelineAborted


class PipelineExitNoise(logging.Filter):
    """For the psycopg logger: drops its note that a pipeline closed as aborted after one of its statements
    failed (that failure is the exception the caller gets); every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) == 2 and isinstance(args[0], Pipeline) and isinstance(args[1], PipelineAborted))


@functools.cache
def _statement(model: type[models.Model], vendor: str) -> tuple[str, tuple[models.Field, ...], str | None]:
    meta = model._meta
    auto_pk = meta.pk if isinstance(meta.pk, models.AutoField) else None
    fields = tuple(f for f in meta.concrete_fields if f is not auto_pk and not getattr(f, "generated", False))
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 (names from the model, values as parameters)
        quote(meta.db_table), ", ".join(quote(f.column) for f in fields), ", ".join(["%s"] * len(fields))
    )
    return sql, fields, auto_pk.column if auto_pk else None


def insert_rows(*instances: models.Model, then_read: tuple[str, Sequence] | None = None) -> list[tuple]:
    """INSERT each instance as a new row and set its auto primary key, as save(force_insert=True) would;
    then run the query `then_read` (SQL, parameters), if given, and return its rows."""
    with ExitStack() as cursors:
        with _one_round_trip(len(instances) + (then_read is not None)):
            sent = [(instance, _send(instance, cursors.enter_context(connection.cursor()))) for instance in instances]
            if then_read is not None:
                reader = cursors.enter_context(connection.cursor())
                reader.execute(*then_read)
        for instance, cursor in sent:
            _finish(instance, cursor)
        return reader.fetchall() if then_read is not None else []


@contextmanager
def _one_round_trip(statements: int) -> Iterator[None]:
    if statements < 2 or connection.vendor != "postgresql":
        yield
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def _send(instance: models.Model, cursor: CursorWrapper) -> CursorWrapper | None:
    """Send the row's INSERT; the cursor to read its new key from, if the database makes the key."""
    sql, fields, returning = _statement(type(instance), connection.vendor)
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    if returning is None:
        cursor.execute(sql, values)
        return None
    cursor.execute(f"{sql} RETURNING {connection.ops.quote_name(returning)}", values)
    return cursor


def _finish(instance: models.Model, key_cursor: CursorWrapper | None) -> None:
    if key_cursor is not None:
        setattr(instance, instance._meta.pk.attname, key_cursor.fetchone()[0])
    instance._state.adding = False
    instance._state.db = connection.alias
