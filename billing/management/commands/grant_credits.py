from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from billing.services import adjustment_outcome, wallet_adjust, wallet_balance
from flixly_site.errors import ValidationFailed


class Command(BaseCommand):
    help = "Grant (or, with a negative amount, take) credits; writes a ledger row. Never goes below zero."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--amount", type=int, required=True)
        parser.add_argument("--reason", required=True)

    def handle(self, *args, **options) -> None:
        user = User.objects.filter(email__iexact=options["email"].strip()).first()
        if user is None:
            raise CommandError(f"No account with e-mail {options['email']}.")
        if options["amount"] == 0 or not options["reason"].strip():
            raise CommandError("--amount must be non-zero and --reason must not be empty.")
        try:
            entry, shortfall = wallet_adjust(
                user_id=user.pk, amount=options["amount"], reason=options["reason"].strip()
            )
        except ValidationFailed as error:
            raise CommandError(f"--amount: {error.message}") from None
        outcome = adjustment_outcome(who=user.email, asked=options["amount"], entry=entry, shortfall=shortfall)
        self.stdout.write(f"{outcome} Balance: {wallet_balance(user_id=user.pk)}.")
