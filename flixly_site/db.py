"""The submit path's writes, built once per model and run together.

A submit debits the wallet, writes a ledger row, a job and its first event, and counts the account's
running jobs. Run one by one, with Django's save() compiling each INSERT, that was five round trips and
about a quarter of a submit's CPU. run_together() runs such statements in order, so each sees what the
ones before it did; parts that need not see each other's writes go further, as one Together: on
PostgreSQL that is one statement (a WITH of its INSERTs), which costs about half of what the same parts
cost as statements of their own. A Together may also lead with one row's UPDATE (a Lead: the debit),
its inserts then taken from the row it returned, so a submit is one statement. (psycopg's pipeline mode,
which sent the statements in one round trip, cost more client CPU than the round trip it saved: measured
on the submit path, 60 µs more per submit.)
An INSERT statement is built once per model and each value is what the field's own pre_save and
get_db_prep_save make of it: for the common values of Django's own field types (texts, booleans, keys
and, on PostgreSQL, UUIDs, integers, aware datetimes, JSON objects and lists) their result is made
directly, for the rest they run (a test compares the two field by field). On PostgreSQL a field that
holds its constant default (most of a new job's) has it written into the statement instead of sent. So
defaults, auto_now_add, JSON and UUIDs are stored exactly as save() would store them, on PostgreSQL and
SQLite alike. Signals are not sent: use it only for models without save() overrides or signal
receivers. Computed columns are read back with their field's to_python, which suits the keys and numbers
they hold here (not JSON or dates on SQLite).

A statement's error, such as a unique violation, still reaches the caller as Django's own exception,
nothing after the failed statement runs, and the caller's transaction or savepoint rolls back as usual.
"""

import functools
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.operations import get_json_dumps
from django.db.backends.utils import CursorWrapper
from django.utils.functional import Promise
from psycopg.sql import Literal
from psycopg.types.json import Jsonb

Query = tuple[str, Sequence]


@dataclass(frozen=True)
class Lead:
    """A statement that changes at most one row and returns it (an UPDATE ... RETURNING `columns`, the first
    never NULL), to run first in a Together: InsertFroms whose source is the Lead insert their row only when
    it returned its row, after it (so under the row lock it took), with their computed columns taken from
    that row."""

    query: Query
    columns: tuple[str, ...]


@dataclass(frozen=True)
class InsertFrom:
    """INSERT the instance's row if `source` finds a row, with the columns in `computed` taken from that
    row: a ledger row whose balance_after is the balance its debit just wrote, say. The source is SQL from
    FROM on (with %s parameters and no literal values: its text is part of a cache key), `computed` then
    mapping attribute names to SQL expressions over it; or a Lead of the same Together, `computed` then
    mapping attribute names to its columns. The source finds at most one row; when it finds none, nothing
    is inserted. Once run, the instance holds the computed values and its new key."""

    instance: models.Model
    source: "Query | Lead"
    computed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Together:
    """Parts that run as one statement on PostgreSQL (a WITH of the Lead and the INSERTs, the queries as
    scalar subqueries), so they all see the database as it was before any of them; elsewhere one by one,
    the queries first, to the same effect. So no part may read what another writes. Parts are at most one
    Lead (first), model instances and InsertFroms to insert, and queries returning exactly one row of one
    column (a count, a sum). Each part has its own entry in run_together's result, as if it had run alone
    (a Lead's: its row, or none)."""

    parts: tuple["Part", ...]

    def __init__(self, *parts: "Part"):
        object.__setattr__(self, "parts", parts)
        _check_lead(parts)


Part = models.Model | InsertFrom | Lead | Query


def _check_lead(parts: tuple[Part, ...]) -> None:
    """A Lead comes first, and then every insert is taken from it: one inserted regardless would run before
    the Lead's row lock, and a wait it met there (on a unique index, say) could deadlock with that lock."""
    lead = parts[0] if parts and isinstance(parts[0], Lead) else None
    for part in parts[1:] if lead else parts:
        if isinstance(part, Lead):
            raise TypeError("A Together's Lead comes first.")
        source = part.source if isinstance(part, InsertFrom) else None
        if isinstance(source, Lead) and source is not lead:
            raise TypeError("An InsertFrom takes its row from the Lead of its own Together.")
        if lead is not None and not isinstance(part, tuple) and source is not lead:
            raise TypeError("In a Together with a Lead, every insert takes its row from it.")


LEAD_NAME = "lead_row"  # the Lead's CTE in a Together's statement
Statement = Part | Together


@functools.cache
def _insert_sql(
    model: type[models.Model],
    vendor: str,
    computed: tuple[tuple[str, str], ...],
    source: str,
    at_default: int = 0,
) -> tuple[str, tuple[tuple[models.Field, tuple[type, ...]], ...], tuple[models.Field, ...]]:
    """The INSERT for the model (VALUES, or SELECT ... `source`), its parameter fields (each with the types
    of value it stores as they are), and the fields its RETURNING clause reads back (the key, then the
    computed columns). The fields `at_default` names (bit i: the i-th of _constant_defaults) hold their
    constant default: it is written into the statement, not sent."""
    meta = model._meta
    auto_pk = meta.pk if isinstance(meta.pk, models.AutoField) else None
    expressions = dict(computed)
    constants = {
        field: literal
        for index, (field, _, literal) in enumerate(_constant_defaults(model, vendor))
        if at_default >> index & 1 and field.attname not in expressions
    }
    fields = tuple(
        f
        for f in meta.concrete_fields
        if f is not auto_pk and not f.generated and f.attname not in expressions and f not in constants
    )
    quote = connection.ops.quote_name
    returned = (meta.pk, *(meta.get_field(name) for name in expressions))
    columns = [quote(f.column) for f in (*fields, *constants, *returned[1:])]
    values = ["%s"] * len(fields) + list(constants.values()) + list(expressions.values())
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "
    body = f"SELECT {', '.join(values)} {source}" if source else f"VALUES ({', '.join(values)})"
    tail = f" RETURNING {', '.join(quote(f.column) for f in returned)}"
    return head + body + tail, tuple((f, _fast_value(f, vendor)) for f in fields), returned


@functools.cache
def _constant_defaults(model: type[models.Model], vendor: str) -> tuple[tuple[models.Field, Any, str], ...]:
    """The model's fields whose default is a constant (a plain value, or an empty dict or list), each with
    that default and, as SQL, what save() would send for it. On PostgreSQL only: a new job holds its
    default in two thirds of its columns, and each costs the driver and the server a parameter."""
    if vendor != "postgresql":
        return ()
    constants = []
    for each in model._meta.concrete_fields:
        if each.primary_key or each.generated or _computed_at_save(each):
            continue
        if each.has_default() and callable(each.default) and each.default not in (dict, list):
            continue  # computed anew for each row (a UUID, a time)
        default = each.get_default()
        if isinstance(default, Promise):
            continue  # a lazy translation: its text depends on the language active at save()
        literal = _literal(each.get_db_prep_save(default, connection))
        if literal is not None:
            constants.append((each, default, literal))
    return tuple(constants)


def _computed_at_save(field: models.Field) -> bool:
    """Whether save() sends a value of its own making for the field (its pre_save: an auto_now time, say)."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return True
    return type(field).pre_save not in (models.Field.pre_save, models.DateField.pre_save)


def _literal(value: Any) -> str | None:
    """`value` as a PostgreSQL literal, for the few kinds of value a constant default sends; else None."""
    if isinstance(value, Jsonb) and value.obj not in ({}, []):
        return None
    # A % would read as a placeholder in the statement; a backslash otherwise with standard_conforming_strings off.
    if isinstance(value, str) and ("%" in value or "\\" in value):
        return None
    if value is None or isinstance(value, (bool, int, str, Jsonb)):
        return Literal(value).as_string(None)
    return None


def _defaulted(instance: models.Model, constants: tuple[tuple[models.Field, Any, str], ...]) -> int:
    """Which of the `constants` fields of `instance` hold their default (the same value, of the same type),
    as bits: a cache key that costs nothing to hash."""
    at_default = 0
    for index, (each, default, _) in enumerate(constants):
        value = getattr(instance, each.attname)
        if value is default if default is None else (type(value) is type(default) and value == default):
            at_default |= 1 << index
    return at_default


# Field class -> the exact types of value its get_db_prep_save returns unchanged (an auto key's integer
# too: unlike other integer fields, Django sends it without psycopg's sized wrapper).
AS_IS = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.BooleanField: (bool,),
    models.AutoField: (int,),
    models.BigAutoField: (int,),
}
INTEGER_FIELDS = {
    models.SmallIntegerField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
}
SLOW = object()  # a value the field's own conversion must handle
FastValue = Callable[[Any], Any]  # a value as get_db_prep_save would send it, or SLOW


def _fast_value(field: models.Field, vendor: str) -> FastValue | None:
    """What the field's pre_save and get_db_prep_save do to the common values, done directly (about half of
    an insert's CPU); None when they compute or convert every value (auto_now_add, say)."""
    if isinstance(field, models.ForeignKey):
        return _fast_value(field.target_field, vendor) if type(field).pre_save is models.Field.pre_save else None
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return None
    kind = type(field)
    if kind in AS_IS or (kind is models.UUIDField and vendor == "postgresql"):  # elsewhere a UUID is its hex
        types = (*AS_IS.get(kind, (uuid.UUID,)), type(None))
        return lambda value: value if type(value) in types else SLOW
    if vendor == "postgresql":
        return _fast_on_postgresql(field)
    return None


def _fast_on_postgresql(field: models.Field) -> FastValue | None:
    kind, ops = type(field), connection.ops
    if kind is models.DateTimeField:  # an aware datetime goes as it is; a naive one gets Django's warning
        return lambda value: (
            value if value is None or (type(value) is datetime and value.utcoffset() is not None) else SLOW
        )
    if kind is models.JSONField:  # None is SQL NULL, as JSONField.get_db_prep_save makes it
        dumps = get_json_dumps(field.encoder)
        return lambda value: (
            None if value is None else Jsonb(value, dumps=dumps) if type(value) in (dict, list) else SLOW
        )
    sized = getattr(ops, "integerfield_type_map", {}).get(field.get_internal_type())
    if sized is not None and kind in INTEGER_FIELDS:  # psycopg's sized type, as Django wraps it
        return lambda value: None if value is None else sized(value) if type(value) is int else SLOW
    return None


def run_together(*statements: Statement) -> list[list[tuple]]:
    """Run the statements in order; return each one's rows (a Together's parts one entry each).

    A model instance is INSERTed as a new row, its auto primary key set, as save(force_insert=True)
    would; an InsertFrom likewise, when its source finds its row. A query (SQL, parameters) runs as
    given. Rows are [] for a statement that returns none."""
    db = connections[DEFAULT_DB_ALIAS]  # the proxy `connection` looks the wrapper up on every attribute
    if db.vendor != "postgresql":
        return [rows for statement in statements for rows in _one_by_one(db, statement)]
    return _run(db, statements)


def _one_by_one(db: BaseDatabaseWrapper, statement: Statement) -> list[list[tuple]]:
    """A statement alone; a Together's parts one by one: its queries, its Lead, then its inserts, so that the
    queries see the database as it was before any of its changes, as its one statement does on PostgreSQL."""
    if not isinstance(statement, Together):
        return _run(db, [statement])
    parts = statement.parts
    order = sorted(range(len(parts)), key=lambda index: _rank(parts[index]))
    rows: dict[int, list[tuple]] = {}
    for index in order:
        part = parts[index]
        if isinstance(part, Lead):
            rows[index] = _run(db, [part.query])[0]
        elif isinstance(part, InsertFrom) and isinstance(part.source, Lead):
            rows[index] = _insert_after_lead(db, part, rows[0])
        else:
            rows[index] = _run(db, [part])[0]
    return [rows[index] for index in range(len(parts))]


def _rank(part: Part) -> int:
    return 0 if isinstance(part, tuple) else 1 if isinstance(part, Lead) else 2


def _insert_after_lead(db: BaseDatabaseWrapper, insert: InsertFrom, lead_rows: list[tuple]) -> list[tuple]:
    """The insert as its one statement does it: nothing without the Lead's row, else the row with the
    computed columns from it; its rows as there (the key, then the computed columns)."""
    if not lead_rows:
        return []
    columns = insert.source.columns
    computed = [lead_rows[0][columns.index(column)] for column in insert.computed.values()]
    for name, value in zip(insert.computed, computed, strict=True):
        setattr(insert.instance, name, value)
    [(key,)] = _run(db, [insert.instance])[0]
    return [(key, *computed)]


def _run(db: BaseDatabaseWrapper, statements: Sequence[Statement]) -> list[list[tuple]]:
    rows = []
    with db.cursor() as cursor:
        for statement in statements:
            returned = _send(db, statement, cursor)
            rows.extend(_finish(db, statement, cursor, returned))
    return rows


def _as_insert(part: models.Model | InsertFrom) -> InsertFrom:
    return part if isinstance(part, InsertFrom) else InsertFrom(part, ("", ()))


def _insert_of(db: BaseDatabaseWrapper, part: models.Model | InsertFrom) -> tuple[Query, tuple]:
    """The part's INSERT with its values, and the fields its RETURNING reads back (the key first)."""
    insert = _as_insert(part)
    instance, computed = insert.instance, tuple(insert.computed.items())
    if isinstance(insert.source, Lead):  # its CTE, in the Together's one statement
        source, source_params = f"FROM {LEAD_NAME}", ()
        computed = tuple((name, f"{LEAD_NAME}.{column}") for name, column in computed)
    else:
        source, source_params = insert.source
    model = type(instance)
    at_default = _defaulted(instance, _constant_defaults(model, db.vendor))
    query, fields, returned = _insert_sql(model, db.vendor, computed, source, at_default)
    values = [_db_value(instance, field, fast, db) for field, fast in fields]
    return (query, [*values, *source_params]), returned


def _db_value(instance: models.Model, field: models.Field, fast: FastValue | None, db: BaseDatabaseWrapper) -> Any:
    """What save() would send for the field: its pre_save and get_db_prep_save, or their result for the
    common values without their steps."""
    if fast is not None:
        value = fast(getattr(instance, field.attname))
        if value is not SLOW:
            return value
    return field.get_db_prep_save(field.pre_save(instance, True), db)


def _send(db: BaseDatabaseWrapper, statement: Statement, cursor: CursorWrapper) -> tuple:
    """Run the statement on the cursor; what its rows hold (see _finish)."""
    if isinstance(statement, tuple):
        query, returned = statement, ()
    elif isinstance(statement, Lead):
        raise TypeError("A Lead runs as the first part of a Together.")
    elif isinstance(statement, Together):
        query, returned = _together_query(db, statement)
    else:
        query, returned = _insert_of(db, statement)
    cursor.execute(*query)
    return returned


def _together_query(db: BaseDatabaseWrapper, together: Together) -> tuple[Query, tuple]:
    """WITH p0 AS (INSERT ... RETURNING key, ...), ... SELECT (query), ..., p0.*, ... : one row, each part's
    columns in turn (an insert's or the Lead's all NULL when it returned no row)."""
    ctes, selected, joins, returned, params, query_params = [], [], [], [], [], []
    for index, part in enumerate(together.parts):
        if isinstance(part, tuple):
            selected.append(f"({part[0]})")
            query_params.extend(part[1])
            returned.append(None)
            continue
        if isinstance(part, Lead):
            (sql, values), fields, name = part.query, part, LEAD_NAME
        else:
            (sql, values), fields = _insert_of(db, part)
            name = f"p{index}"
        ctes.append(f"{name} AS ({sql})")
        selected.append(f"{name}.*")
        joins.append(f"LEFT JOIN {name} ON true")
        returned.append(fields)
        params.extend(values)
    with_clause = f"WITH {', '.join(ctes)} " if ctes else ""
    sql = f"{with_clause}SELECT {', '.join(selected)} FROM (SELECT) AS one {' '.join(joins)}"  # noqa: S608
    return (sql, [*params, *query_params]), tuple(returned)


def _finish(db: BaseDatabaseWrapper, statement: Statement, cursor: CursorWrapper, returned: tuple) -> list[list]:
    """The statement's rows, one list per part (a statement other than a Together is one part)."""
    if isinstance(statement, tuple):  # a query as given: it may return no rows at all
        return [cursor.fetchall() if cursor.description is not None else []]
    # An INSERT ... RETURNING or a Together's SELECT: rows without asking for a description, which psycopg
    # builds column by column.
    rows = cursor.fetchall()
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
    when its key came back NULL: its source found no row), the Lead's row (none when its first column came
    back NULL: it changed no row)."""
    per_part, at = [], 0
    for part, fields in zip(together.parts, returned, strict=True):
        width = 1 if fields is None else len(fields.columns) if isinstance(fields, Lead) else len(fields)
        values, at = row[at : at + width], at + width
        if fields is None:
            per_part.append([values])
        elif values[0] is None:
            per_part.append([])
        elif isinstance(fields, Lead):
            per_part.append([values])
        else:
            per_part.append(_mark_inserted(db, _as_insert(part).instance, fields, values))
    return per_part


@contextmanager
def custom_plans() -> Iterator[None]:
    """PostgreSQL plans the statements run here for their own parameter values: they are not prepared. A
    statement a connection has prepared (DATABASE_PREPARED_STATEMENTS) runs, after five runs, on a generic plan
    made for a typical value; for a filter on a rare one (?status=failed among an account's million completed
    jobs) that plan walks every row of the account, 1.5 s instead of 2 ms. Costs no round trip."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    psycopg_connection = connection.connection
    threshold, psycopg_connection.prepare_threshold = psycopg_connection.prepare_threshold, None
    try:
        yield
    finally:
        psycopg_connection.prepare_threshold = threshold
