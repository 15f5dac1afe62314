from django.conf import settings
from django.db import migrations, models

from flixly_site.migration_sql import index_added

NAME = "ledger_user_adjustments"
CREATE = (
    f"CREATE INDEX {{}} IF NOT EXISTS {NAME} ON billing_ledgerentry (user_id, created_at DESC, id DESC) "
    "WHERE kind = 'adjustment'"
)


class Migration(migrations.Migration):
    """Staff's adjust page finds the account's last adjustment among its few, not by reading all its rows."""

    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("billing", "0008_price_help"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="ledgerentry",
                    index=models.Index(
                        condition=models.Q(("kind", "adjustment")), fields=["user", "-created_at", "-id"], name=NAME
                    ),
                )
            ],
            database_operations=[index_added(NAME, CREATE)],
        )
    ]
