from allauth.account.models import EmailAddress
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import MaxLengthValidator, validate_email
from django.db import transaction

from accounts.models import DEFAULT_SCOPES, KeyMode, Scope, User
from accounts.services import apikey_create
from billing.services import wallet_adjust, wallet_ensure
from flixly_site.errors import ApplicationError, ValidationFailed


class Command(BaseCommand):
    help = "Create an API key for an account and print only the key on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="CLI key")
        parser.add_argument("--test", action="store_true", help="A test-mode key (flx_test_), never charged.")
        parser.add_argument("--scopes", default=",".join(DEFAULT_SCOPES), help=f"Comma separated: {Scope.values}")
        parser.add_argument("--create-user", action="store_true", help="Create a verified free account if missing.")
        parser.add_argument("--credits", type=int, default=0, help="Grant this many credits (a ledger row).")

    def handle(self, *args, **options) -> None:
        email, name = options["email"].strip().lower(), options["name"].strip()
        try:
            validate_email(email)
            MaxLengthValidator(User._meta.get_field("email").max_length)(email)
        except ValidationError:
            raise CommandError(f"--email: {email[:80]!r} is not a valid e-mail address.") from None
        if not name:
            raise CommandError("--name cannot be blank.")
        with transaction.atomic():
            user = self._user(email, options["create_user"])
            self._grant(user, options["credits"])
            try:
                issued = apikey_create(
                    user=user,
                    name=name,
                    mode=KeyMode.TEST if options["test"] else KeyMode.LIVE,
                    scopes=[s.strip() for s in options["scopes"].split(",") if s.strip()],
                )
            except ApplicationError as error:
                raise CommandError(f"{error.message} {error.details or ''}".strip()) from None
        self.stdout.write(issued.raw)

    def _user(self, email: str, create: bool) -> User:
        user = User.objects.filter(email__iexact=email).first()
        if user is not None:
            return user
        if not create:
            raise CommandError(f"No account with e-mail {email}; pass --create-user to create one.")
        user = User.objects.create_user(email=email, password=None)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    def _grant(self, user: User, credits: int) -> None:
        if credits < 0:
            raise CommandError("--credits cannot be negative.")
        wallet_ensure(user_id=user.pk)
        if credits:
            try:
                wallet_adjust(user_id=user.pk, amount=credits, reason="Granted by create_api_key")
            except ValidationFailed as error:  # raised inside handle's transaction: no account is left behind
                raise CommandError(f"--credits: {error.message}") from None
