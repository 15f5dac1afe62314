import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from flixly_site.migration_sql import index_drop, index_rebuilt, index_sql

OLD = "billing_ledgerentry_user_id_b10feb9b"
CREATE_OLD = f"CREATE INDEX {{}} IF NOT EXISTS {OLD} ON billing_ledgerentry (user_id)"


class Migration(migrations.Migration):
    """The ledger's user loses its own index: ledger_user_recent and ledger_idempotency_per_user start with it."""

    atomic = False  # DROP/CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("billing", "0003_ledgerentry_public_id"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="ledger_entries",
                        to=settings.AUTH_USER_MODEL,
                    ),
                )
            ],
            database_operations=[
                index_sql(
                    forwards={
                        "postgresql": index_drop([OLD], concurrently=True),
                        "sqlite": index_drop([OLD], concurrently=False),
                    },
                    backwards={
                        "postgresql": index_rebuilt(OLD, CREATE_OLD.format("CONCURRENTLY")),
                        "sqlite": [CREATE_OLD.format("")],
                    },
                )
            ],
        )
    ]
