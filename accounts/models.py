import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower


class Plan(models.Model):
    """What an account may do: request rate, parallel jobs and the credits a subscription grants."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=60)
    requests_per_minute = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(200)])
    parallel_tasks = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(25)])
    monthly_credits = models.PositiveIntegerField(default=0, help_text="Credits granted by each paid invoice.")
    price_cents = models.PositiveIntegerField(
        default=0,
        help_text="Monthly price shown on the billing page. Customers pay the Stripe price's amount: change it in "
        "Stripe too.",
    )
    currency = models.CharField(max_length=3, default="usd")
    stripe_price_id = models.CharField(max_length=100, blank=True, help_text="Stripe recurring Price for this plan.")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("sort_order", "id")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(requests_per_minute__gte=1, requests_per_minute__lte=200), name="plan_rpm_range"
            ),
            models.CheckConstraint(
                condition=models.Q(parallel_tasks__gte=1, parallel_tasks__lte=25), name="plan_par_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def price_display(self) -> str:
        return f"{self.price_cents / 100:,.2f} {self.currency.upper()}"


FREE_PLAN_SLUG = "free"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        from allauth.account.models import EmailAddress  # allauth's models need this app's loaded first

        fields.update(is_staff=True, is_superuser=True)
        user = self._create(email, password, **fields)
        # Made by the operator at the terminal (createsuperuser): the address needs no e-mail to prove it.
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        return user


class User(AbstractUser):
    """An account. The e-mail address is the login; there is no username."""

    username = None
    email = models.EmailField("e-mail address", unique=True)
    # Keyed by slug so the default needs no query; the seed migration creates the free plan.
    plan = models.ForeignKey(
        Plan, to_field="slug", on_delete=models.PROTECT, default=FREE_PLAN_SLUG, related_name="users"
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="user_email_ci_unique",
                violation_error_message="Another account already uses this e-mail address.",
            )
        ]

    def __str__(self) -> str:
        return self.email


class Scope(models.TextChoices):
    GENERATE = "generate", "Generate"
    JOBS_READ = "jobs:read", "Read jobs"
    KEYS_MANAGE = "keys:manage", "Manage keys"
    BILLING_READ = "billing:read", "Read billing"
    WEBHOOKS_MANAGE = "webhooks:manage", "Manage webhooks"


DEFAULT_SCOPES = [s.value for s in Scope if s != Scope.KEYS_MANAGE]


class KeyMode(models.TextChoices):
    LIVE = "live", "Live"
    TEST = "test", "Test"


class ApiKey(models.Model):
    """An API key. Its id is stable across rolls; each roll adds a new ApiKeySecret."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    mode = models.CharField(max_length=4, choices=KeyMode.choices, default=KeyMode.LIVE)
    prefix = models.CharField(max_length=16, help_text="Visible start of the current secret.")
    last_four = models.CharField(max_length=4)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField()
    monthly_credit_cap = models.PositiveIntegerField(null=True, blank=True)
    allowed_ips = models.JSONField(default=list, blank=True, help_text="CIDRs; empty allows any address.")
    allowed_models = models.JSONField(default=list, blank=True, help_text="Catalog ids; empty allows all.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    rolled_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expiry_reminder_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["user", "-created_at"]), models.Index(fields=["expires_at"])]
        verbose_name = "API key"  # Django's default capitalises it as "Api key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…{self.last_four})"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.last_four}"


class ApiKeySecret(models.Model):
    """One secret of a key, stored only as an HMAC. A rolled secret lives on until valid_until."""

    key_hash = models.CharField(max_length=64, unique=True)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="secrets")
    created_at = models.DateTimeField(auto_now_add=True)
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Set when the key is rolled past this secret.")

    class Meta:
        verbose_name = "API key secret"

    def __str__(self) -> str:
        return f"secret of {self.api_key_id}"
