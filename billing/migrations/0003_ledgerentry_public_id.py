"""Ledger rows get a UUID for the API (the contract's ids are UUIDs): added empty, filled by the
database (a random one per row, in one statement), then required with a Python default."""

import uuid

from django.db import migrations, models
from django.db.models.functions import UUID4


def fill_public_ids(apps, schema_editor) -> None:
    apps.get_model("billing", "LedgerEntry").objects.filter(public_id__isnull=True).update(public_id=UUID4())


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_wallet_version")]

    operations = [
        migrations.AddField(
            model_name="ledgerentry", name="public_id", field=models.UUIDField(editable=False, null=True)
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="ledgerentry", name="public_id", field=models.UUIDField(default=uuid.uuid4, editable=False)
        ),
    ]
