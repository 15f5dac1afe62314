from django.core.management.base import BaseCommand

from generation.catalog import catalog_sync


class Command(BaseCommand):
    help = "Load or update the model catalog from generation/catalog.json (idempotent; keeps what staff edited)."

    def handle(self, *args, **options) -> None:
        counts = catalog_sync()
        self.stdout.write(
            f"Catalog synced: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['kept']} kept as staff edited them."
        )
