from django.db import migrations, models


class Migration(migrations.Migration):
    """Worker nodes and their last heartbeat: a new, small table (one row per node name)."""

    dependencies = [
        ("generation", "0010_job_worker"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorkerNode",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=255, unique=True)),
                ("seen_at", models.DateTimeField(verbose_name="last seen")),
            ],
            options={
                "ordering": ("name",),
            },
        ),
    ]
