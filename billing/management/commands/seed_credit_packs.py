from django.core.management.base import BaseCommand

from billing.services import credit_packs_seed


class Command(BaseCommand):
    help = "Create the default credit packs when there are none (safe to re-run: never changes existing packs)."

    def handle(self, *args, **options) -> None:
        if created := credit_packs_seed():
            self.stdout.write(f"Created {created} default credit packs.")
        else:
            self.stdout.write("Credit packs already exist; left as they are.")
