from django.db import migrations, models

from flixly_site.migration_sql import index_added

NAME = "delivery_recent"
CREATE = f"CREATE INDEX {{}} IF NOT EXISTS {NAME} ON generation_webhookdelivery (created_at DESC, id DESC)"


class Migration(migrations.Migration):
    """Staff's list of every webhook delivery, newest first, read from an index instead of sorting the table."""

    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("generation", "0008_job_filter_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="webhookdelivery", index=models.Index(fields=["-created_at", "-id"], name=NAME)
                )
            ],
            database_operations=[index_added(NAME, CREATE)],
        )
    ]
