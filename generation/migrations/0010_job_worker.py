
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("generation", "0009_delivery_recent_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="worker",
            field=models.CharField(blank=True, db_default="", default="", max_length=255),
        ),
    ]
