from django.conf import settings
from django.db import migrations, models

from flixly_site.migration_sql import index_added, index_drop, index_rebuilt, index_sql

NEW = {
    "job_model_user_recent": "ON generation_job (model_id, user_id, created_at DESC, id DESC)",
    "job_user_type_recent": "ON generation_job (user_id, type, created_at DESC, id DESC)",
    "job_recent": "ON generation_job (created_at DESC, id DESC)",
}
OLD_MODEL = "CREATE INDEX {} IF NOT EXISTS job_model ON generation_job (model_id)"


class Migration(migrations.Migration):
    """The job list filtered by model or type reads only the matching jobs, and staff's list of all jobs is
    read newest first from an index; job_model gives way to the model's composite index, which starts with it."""

    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("generation", "0007_job_time_limit_bounds"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="job", name="job_model"),
                migrations.AddIndex(
                    model_name="job",
                    index=models.Index(fields=["model", "user", "-created_at", "-id"], name="job_model_user_recent"),
                ),
                migrations.AddIndex(
                    model_name="job",
                    index=models.Index(fields=["user", "type", "-created_at", "-id"], name="job_user_type_recent"),
                ),
                migrations.AddIndex(
                    model_name="job", index=models.Index(fields=["-created_at", "-id"], name="job_recent")
                ),
            ],
            database_operations=[
                *(index_added(name, f"CREATE INDEX {{}} IF NOT EXISTS {name} {columns}") for name, columns in NEW.items()),
                index_sql(
                    forwards={
                        "postgresql": index_drop(["job_model"], concurrently=True),
                        "sqlite": index_drop(["job_model"], concurrently=False),
                    },
                    backwards={
                        "postgresql": index_rebuilt("job_model", OLD_MODEL.format("CONCURRENTLY")),
                        "sqlite": [OLD_MODEL.format("")],
                    },
                ),
            ],
        )
    ]
