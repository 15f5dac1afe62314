"""Ledger rows get a UUID for the API (the contract's ids are UUIDs). The database fills it, one random
value per existing row and for any INSERT that leaves it out; the ORM sends its own (Python's uuid4)."""

import uuid

from django.db import migrations, models
from django.db.models.functions import UUID4


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_wallet_version")]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, db_default=UUID4(), editable=False),
        ),
    ]
