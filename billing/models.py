import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import UUID4


class Wallet(models.Model):
    """An account's credit balance. Changed only by billing.services, always with a ledger row."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True)
    balance = models.BigIntegerField(default=0)
    # +1 on every balance change and every wallet_lock: orders the balances mirrored in Redis
    # (billing.balance_cache), and tells a debit whether a job or a spending ledger row was written between
    # its reads and its change (billing.services.Debit).
    version = models.BigIntegerField(default=0, db_default=0, editable=False)
    low_balance_alerted = models.BooleanField(default=False, help_text="Set when the low-balance e-mail went out.")
    # The public id of the ledger entry that last changed the balance, set by the change itself: the wallet
    # names the ledger row its balance comes from, for whoever reconciles the two.
    last_entry = models.CharField(max_length=36, blank=True, default="", db_default="", editable=False)
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True)
    subscription_status = models.CharField(max_length=30, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    # Stripe sends events out of order: only a newer subscription event may change the plan.
    subscription_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_not_negative")]
        permissions = [("adjust_credits", "Can grant or take credits")]

    def __str__(self) -> str:
        return f"{self.user} ({self.balance} credits)"


class EntryKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    PLAN_GRANT = "plan_grant", "Plan grant"
    SIGNUP_BONUS = "signup_bonus", "Sign-up bonus"
    DEBIT = "debit", "Debit"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"
    CLAWBACK = "clawback", "Clawback"


# What spending is: debits net of their refunds (the spend chart; usage, per-key spend and its monthly cap also
# count a refund in the period of its debit: billing.selectors.spending_since).
SPENDING_KINDS = (EntryKind.DEBIT, EntryKind.REFUND)


class LedgerEntry(models.Model):
    """One credit movement. Append-only: rows are never updated or deleted; corrections are new rows."""

    # The id the API shows (the contract's ids are UUIDs); the integer key stays the table's own, for
    # its compact indexes. Random: no index needed, as nothing is looked up by it.
    public_id = models.UUIDField(default=uuid.uuid4, db_default=UUID4(), editable=False)
    # No index of its own: ledger_user_recent and ledger_idempotency_per_user start with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_entries", db_index=False
    )
    amount = models.BigIntegerField(help_text="Positive adds credits, negative takes them.")
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    balance_after = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=200)
    reference_type = models.CharField(max_length=30, blank=True, help_text="job, stripe_checkout, stripe_invoice, …")
    reference_id = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=10, blank=True, help_text="images, videos, audio or chat for job rows.")
    api_key_id = models.UUIDField(null=True, blank=True, help_text="The key that spent the credits, for caps.")
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_after_not_negative"),
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="ledger_idempotency_per_user"),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="ledger_user_recent"),
            # Staff's adjust page looks up the account's last adjustment: few rows among all its debits.
            models.Index(
                fields=["user", "-created_at", "-id"],
                condition=Q(kind=EntryKind.ADJUSTMENT),
                name="ledger_user_adjustments",
            ),
            models.Index(fields=["api_key_id", "created_at"], name="ledger_key_spend"),
            models.Index(fields=["reference_type", "reference_id"], name="ledger_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} → {self.balance_after}"


class CreditPack(models.Model):
    name = models.CharField(max_length=60)
    credits = models.PositiveIntegerField()
    price_cents = models.PositiveIntegerField(
        help_text="Shown on the billing page, and charged when there is no Stripe price. With one, customers pay "
        "that price's amount: change it in Stripe too."
    )
    currency = models.CharField(max_length=3, default="usd")
    stripe_price_id = models.CharField(
        max_length=100, blank=True, help_text="Empty: Checkout charges the price above, inline."
    )
    active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("sort_order", "credits")
        constraints = [models.CheckConstraint(condition=Q(credits__gt=0, price_cents__gt=0), name="pack_positive")]

    def __str__(self) -> str:
        return f"{self.name} ({self.credits} credits)"

    @property
    def price_display(self) -> str:
        return f"{self.price_cents / 100:,.2f} {self.currency.upper()}"


class StripeEvent(models.Model):
    """Every Stripe webhook event, stored once by its id; processing is recorded for staff."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    stripe_created_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("-received_at",)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class BillingAlert(models.Model):
    """Something staff must look at, such as a refund that could not claw back all its credits."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True)
    message = models.TextField()
    reference = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.message[:80]
