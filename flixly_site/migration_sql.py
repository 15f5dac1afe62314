"""Index changes that big tables take without stopping writes: a migration step running SQL per database.

On PostgreSQL indexes are built and dropped CONCURRENTLY, each statement on its own and outside a
transaction (the migration sets atomic = False): a plain CREATE or DROP INDEX, or Django's AlterField,
would lock a table of millions of jobs or ledger rows against every submit until it finished. SQLite
(development and tests) runs the plain statements.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def index_sql(*, forwards: dict[str, list[str]], backwards: dict[str, list[str]]) -> migrations.RunPython:
    """A migration step running forwards[vendor] (backwards[vendor] when unapplied), vendor being
    "postgresql" or "sqlite"."""

    def run(statements: dict[str, list[str]]):
        def apply(apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
            for statement in statements[schema_editor.connection.vendor]:
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(run(forwards), run(backwards))


def index_drop(names: tuple[str, ...] | list[str], *, concurrently: bool) -> list[str]:
    return [f"DROP INDEX {'CONCURRENTLY ' if concurrently else ''}IF EXISTS {name}" for name in names]


def index_rebuilt(name: str, create: str) -> list[str]:
    """PostgreSQL: a concurrent build left invalid by an interrupted run is dropped first, since
    `create`'s IF NOT EXISTS would keep it."""
    return [*index_drop([name], concurrently=True), create]


def index_added(name: str, create: str) -> migrations.RunPython:
    """Build index `name` with `create` (its "{}" takes CONCURRENTLY on PostgreSQL); unapplied, drop it."""
    return index_sql(
        forwards={"postgresql": index_rebuilt(name, create.format("CONCURRENTLY")), "sqlite": [create.format("")]},
        backwards={
            "postgresql": index_drop([name], concurrently=True),
            "sqlite": index_drop([name], concurrently=False),
        },
    )
