import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from flixly_site.migration_sql import index_drop, index_rebuilt, index_sql

ACTIVE = (
    "CREATE INDEX {} IF NOT EXISTS job_user_active ON generation_job (user_id) WHERE status IN ('queued', 'running')"
)
MODEL = "CREATE INDEX {} IF NOT EXISTS job_model ON generation_job (model_id)"
OLD_USER = "CREATE INDEX {} IF NOT EXISTS generation_job_user_id_0474d6ca ON generation_job (user_id)"
OLD_MODEL = "CREATE INDEX {} IF NOT EXISTS generation_job_model_id_e68b26be ON generation_job (model_id)"
OLD_LIKE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS generation_job_model_id_e68b26be_like "
    "ON generation_job (model_id varchar_pattern_ops)"
)
OLD_NAMES = ("generation_job_user_id_0474d6ca", "generation_job_model_id_e68b26be")
NEW_NAMES = ("job_user_active", "job_model")


class Migration(migrations.Migration):
    """The job's user and model lose their own indexes (the composite ones start with the user; the
    model's needs no LIKE index), and unfinished jobs get a small partial index for the parallel-task
    count on every submit."""

    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("generation", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="job",
                    name="model",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="jobs",
                        to="generation.aimodel",
                    ),
                ),
                migrations.AlterField(
                    model_name="job",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="jobs",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AddIndex(model_name="job", index=models.Index(fields=["model"], name="job_model")),
                migrations.AddIndex(
                    model_name="job",
                    index=models.Index(
                        condition=models.Q(("status__in", ("queued", "running"))),
                        fields=["user"],
                        name="job_user_active",
                    ),
                ),
            ],
            database_operations=[
                index_sql(
                    forwards={
                        "postgresql": [
                            *index_rebuilt("job_user_active", ACTIVE.format("CONCURRENTLY")),
                            *index_rebuilt("job_model", MODEL.format("CONCURRENTLY")),
                            *index_drop((*OLD_NAMES, "generation_job_model_id_e68b26be_like"), concurrently=True),
                        ],
                        "sqlite": [ACTIVE.format(""), MODEL.format(""), *index_drop(OLD_NAMES, concurrently=False)],
                    },
                    backwards={
                        "postgresql": [
                            *index_rebuilt(OLD_NAMES[0], OLD_USER.format("CONCURRENTLY")),
                            *index_rebuilt(OLD_NAMES[1], OLD_MODEL.format("CONCURRENTLY")),
                            *index_rebuilt("generation_job_model_id_e68b26be_like", OLD_LIKE),
                            *index_drop(NEW_NAMES, concurrently=True),
                        ],
                        "sqlite": [OLD_USER.format(""), OLD_MODEL.format(""), *index_drop(NEW_NAMES, concurrently=False)],
                    },
                )
            ],
        )
    ]
