import re
from collections.abc import Callable
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts.admin import UserAdmin
from accounts.models import User
from billing.models import BillingAlert, CreditPack, LedgerEntry, StripeEvent, Wallet
from billing.selectors import CATEGORIES, adjustment_last, adjustment_repeated
from billing.services import (
    adjustment_outcome,
    amount_check,
    billing_alerts_resolve,
    wallet_adjust,
    wallet_balance,
    wallet_ensure,
)
from billing.stripe_events import HANDLERS, stripe_event_process
from flixly_site.admin_lists import BigTableAdmin, ChoicesFilter, CreatedFilter, list_time
from flixly_site.errors import ValidationFailed
from flixly_site.forms import SubmitOnceField, form_sent_twice, form_token_release
from flixly_site.parsers import parse_uuid


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def may_adjust(request: HttpRequest) -> bool:
    return request.user.has_perm("billing.adjust_credits")  # the admin itself checks only is_staff


# Back reloads the adjust page, with a new token: the same adjustment sent again this soon is taken for that.
REPEAT_WINDOW = timedelta(minutes=10)
LARGE_ADJUSTMENT = 100_000  # credits: a slip of the keyboard this size is worth a second look


def _amount_checked(amount: int) -> int:
    """An amount the wallet takes in one movement, else the form field's error."""
    try:
        amount_check(amount=amount)
    except ValidationFailed as error:
        raise forms.ValidationError(error.message) from None
    return amount


class AdjustForm(forms.Form):
    amount = forms.IntegerField(help_text="Positive grants credits; negative takes them (never below zero).")
    reason = forms.CharField(max_length=300, help_text="Shown on the account's ledger.")
    # Shown only with a question: a box already on the page could be ticked by habit, or by the browser on Back.
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    once = SubmitOnceField()  # a reload or a double click writes one row

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Use a non-zero amount.")
        return _amount_checked(amount)

    def ask_to_confirm(self, question: str, label: str) -> None:
        """Refuse the adjustment with `question`, and the box (labelled `label`) that confirms it."""
        self.fields["confirm"].widget = forms.CheckboxInput()
        self.fields["confirm"].label = label
        self.add_error("confirm", f"{question} Tick “{label}” to write it.")


def _question(user: User, amount: int, reason: str) -> tuple[str, str] | None:
    """What to ask before writing this adjustment (and the confirming box's label), if anything."""
    if repeated := _repeated(user, amount, reason):
        at = timezone.localtime(repeated.created_at).strftime("%H:%M %Z")
        by = repeated.staff_user or "an operator"
        return (
            f"This repeats the adjustment of {repeated.amount:+,d} credits with this reason written at {at} by {by}.",
            "Write it again",
        )
    if abs(amount) > LARGE_ADJUSTMENT:
        return f"{amount:+,d} credits is a large adjustment.", f"Yes, {amount:+,d} credits"
    return None


def _repeated(user: User, amount: int, reason: str) -> LedgerEntry | None:
    since = timezone.now() - REPEAT_WINDOW
    return adjustment_repeated(user_id=user.pk, amount=amount, reason=reason, since=since)


def _level(entry: LedgerEntry | None, shortfall: int) -> int:
    """How an adjustment's message is shown: a take stops at zero, so it may take less than asked."""
    if entry is None and shortfall == 0:
        return messages.INFO  # already written under the form's token
    return messages.WARNING if shortfall else messages.SUCCESS


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("user", "balance", "subscription_status", "stripe_customer_id", "updated_at", "adjust_link")
    search_fields = ("user__email", "stripe_customer_id")
    fields = readonly_fields = [*(f.name for f in Wallet._meta.fields), "ledger"]

    @admin.display(description="Ledger (newest 50)")
    def ledger(self, wallet: Wallet) -> str:
        entries = LedgerEntry.objects.filter(user_id=wallet.user_id).select_related("staff_user")[:50]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.created_at, e.get_kind_display(), f"{e.amount:+d}", e.balance_after, e.reason, e.staff_user or "")
                for e in entries
            ),
        )
        everything = reverse("admin:billing_ledgerentry_changelist") + f"?user__id__exact={wallet.user_id}"
        return format_html(
            "<table><tr><th>When</th><th>Kind</th><th>Amount</th><th>Balance</th><th>Reason</th><th>Staff</th></tr>{}"
            '</table><p><a href="{}">All ledger rows</a></p>',
            rows,
            everything,
        )

    @admin.display(description="Grant / adjust")
    def adjust_link(self, wallet: Wallet) -> str:
        return format_html('<a href="{}">Grant or adjust</a>', reverse("admin:billing_wallet_adjust", args=[wallet.pk]))

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        if may_adjust(request):
            return self.list_display
        return tuple(name for name in self.list_display if name != "adjust_link")

    def get_urls(self):
        # By account, not by wallet: accounts added in the admin or at the terminal have none until one is made here.
        adjust = self.admin_site.admin_view(self.adjust_view)
        return [path("<int:user_id>/adjust/", adjust, name="billing_wallet_adjust"), *super().get_urls()]

    def adjust_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        if not may_adjust(request):
            raise PermissionDenied
        user = get_object_or_404(User, pk=user_id)
        wallet = wallet_ensure(user_id=user.pk)
        form = AdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid() and (done := self._adjust(request, user, form)):
            return done
        context = {
            **self.admin_site.each_context(request),
            "title": f"Grant or adjust credits for {user}",
            "opts": self.opts,  # the breadcrumbs of Django's own pages: app, wallets, this wallet
            "has_view_permission": self.has_view_permission(request, wallet),
            "wallet": wallet,
            "form": form,
            "last": adjustment_last(user_id=user.pk),
        }
        return render(request, "admin/billing/wallet_adjust.html", context)

    def _adjust(self, request: HttpRequest, user: User, form: AdjustForm) -> HttpResponse | None:
        """Write the form's adjustment and go to the wallet; None when the form is refused, to show it again."""
        if sent := form_sent_twice(request, form, page=reverse("admin:billing_wallet_change", args=[user.pk])):
            return sent
        grant = {name: form.cleaned_data[name] for name in ("amount", "reason", "once")}
        if not form.cleaned_data["confirm"] and (question := _question(user, grant["amount"], grant["reason"])):
            form.ask_to_confirm(*question)
            form_token_release(request, form)  # ticked, the same form is a new try
            return None
        try:
            # the token also keys the ledger row: a repeat is refused there when the cache could not tell
            entry, shortfall = wallet_adjust(user_id=user.pk, staff_user_id=request.user.pk, **grant)
        except ValidationFailed as error:
            form.add_error("amount", error.message)
            form_token_release(request, form)
            return None
        outcome = adjustment_outcome(who=user, asked=grant["amount"], entry=entry, shortfall=shortfall)
        messages.add_message(request, _level(entry, shortfall), outcome)
        return redirect("admin:billing_wallet_change", user.pk)


class LedgerCategoryFilter(ChoicesFilter):
    title = "category"
    field = "category"
    options = tuple((category, category.capitalize()) for category in CATEGORIES)


# The rows with a Stripe id for reference (billing.stripe_events); a job's rows have its id, and adjustments none.
STRIPE_REFERENCES = ("stripe_payment_intent", "stripe_invoice")
STRIPE_ID = re.compile(r"[a-z]+_\w+")  # pi_3N…, in_1…, cs_test_…
ONE_ACCOUNT = "user__id__exact"  # the filter of an account's "Credit ledger" link


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin, BigTableAdmin):
    # The amount shares the kind's column, the staff member the reason's, and a job shows by its id's first
    # characters: with a column each and whole ids the list did not fit a 1280 px screen.
    list_display = ("created_at", "user", "kind_and_amount", "balance_after", "reason_and_staff", "reference")
    list_select_related = ("user", "staff_user")
    list_filter = (CreatedFilter, "kind", LedgerCategoryFilter)
    # created_at's index serves the newest or the oldest first, and ledger_user_recent one account's rows;
    # every other column sorts every row (by account: 1.16 s at a million rows).
    sortable_by = ("created_at",)
    # reference_type -> the admin page of what such a row names (its id -> URL), added by the app that owns it
    # (generation: "job"), as UserAdmin.related_links are: billing imports nothing above it.
    reference_pages: dict[str, Callable[[str], str]] = {}
    search_help_text = (
        "Search by an account's e-mail address, a job's full id or a Stripe id (pi_…, in_…), exactly; "
        "on one account's ledger (its Credit ledger link), by an idempotency key too."
    )

    def search_by(self, request: HttpRequest, queryset: QuerySet, term: str) -> QuerySet | None:
        if job_id := parse_uuid(term):
            return queryset.filter(reference_type="job", reference_id=str(job_id))  # served by ledger_reference
        stripe = Q(reference_type__in=STRIPE_REFERENCES, reference_id=term)
        if request.GET.get(ONE_ACCOUNT):
            # A key is unique within its account alone: ledger_idempotency_per_user (user, key) serves it there.
            return queryset.filter(stripe | Q(idempotency_key=term))
        return queryset.filter(stripe) if STRIPE_ID.fullmatch(term) else None

    @admin.display(description="Credits")
    def kind_and_amount(self, entry: LedgerEntry) -> str:
        return format_html("{}<br>{}", entry.get_kind_display(), f"{entry.amount:+d}")

    @admin.display(description="Reason")
    def reason_and_staff(self, entry: LedgerEntry) -> str:
        reason = entry.reason or self.get_empty_value_display()
        if entry.staff_user is None:
            return reason
        return format_html("{}<br>by {}", reason, entry.staff_user)

    @admin.display(description="Reference", ordering="reference_id")
    def reference(self, entry: LedgerEntry) -> str:
        page = self.reference_pages.get(entry.reference_type)
        if page is None:
            return entry.reference_id  # a Stripe id wraps anywhere (admin.css)
        title = f"{entry.reference_type.capitalize()} {entry.reference_id}"
        return format_html('<a href="{}" title="{}">{}</a>', page(entry.reference_id), title, entry.reference_id[:8])


class CreditPackForm(forms.ModelForm):
    def clean_credits(self) -> int:
        # Checked here, not at checkout: a pack the wallet would refuse could be paid for but never granted.
        return _amount_checked(self.cleaned_data["credits"])


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    form = CreditPackForm
    list_display = ("name", "credits", "price_cents", "currency", "stripe_price_id", "active", "sort_order")
    list_editable = ("active", "sort_order")


class EventStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("failed", "Failed"), ("processed", "Processed")]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(processed_at__isnull=True).exclude(last_error="")
        if self.value() == "processed":
            return queryset.filter(processed_at__isnull=False)
        return queryset


class StripeEventTypeFilter(ChoicesFilter):
    """The types Flixly acts on; a SELECT DISTINCT read every stored event for them."""

    title = "type"
    field = "type"
    options = tuple((event_type, event_type) for event_type in HANDLERS)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    # The id shares the type's column and the attempts the processing time's: with a column each the list did
    # not fit a 1280 px screen.
    list_display = ("received_at", "event", "processed", "last_error")
    list_filter = (EventStatusFilter, StripeEventTypeFilter)
    search_fields = ("event_id__exact",)  # its unique index; icontains read every event
    search_help_text = "Search by a whole Stripe event id (evt_…)."
    readonly_fields = [f.name for f in StripeEvent._meta.fields]
    actions = ["reprocess"]

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("billing.view_stripeevent")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # needed for the reprocess action, which may grant credits; every field stays read-only
        return request.user.has_perm("billing.change_stripeevent")

    @admin.display(description="Event", ordering="type")
    def event(self, row: StripeEvent) -> str:
        return format_html("{}<br>{}", row.type, row.event_id)

    @admin.display(description="Processed", ordering="processed_at")
    def processed(self, row: StripeEvent) -> str:
        attempts = f"{row.attempts} attempt{pluralize(row.attempts)}"
        return format_html("{}<br>{}", list_time(row.processed_at) if row.processed_at else "Not yet", attempts)

    @admin.action(permissions=["change"], description="Process selected events again")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        for row in queryset.filter(processed_at__isnull=True):
            try:
                stripe_event_process(row=row)
            except Exception as error:
                messages.error(request, f"{row.event_id}: {error}")
                self.log_change(request, row, f"Processed again by the admin action; it failed: {error}")
            else:
                self.log_change(request, row, "Processed again by the admin action.")
        messages.info(request, "Done; failures stay listed with their error.")


@admin.register(BillingAlert)
class BillingAlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "message", "reference", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter),)
    readonly_fields = ("created_at", "user", "message", "reference")
    actions = ["resolve"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # raised by the system, about money it could not move

    def has_delete_permission(self, request: HttpRequest, obj: BillingAlert | None = None) -> bool:
        return False  # resolved, not deleted: the record stays

    @admin.action(permissions=["change"], description="Mark resolved")
    def resolve(self, request: HttpRequest, queryset: QuerySet[BillingAlert]) -> None:
        billing_alerts_resolve(alerts=queryset)


def _grant_link(request: HttpRequest, user: User) -> tuple[str, str] | None:
    if not may_adjust(request):
        return None  # the page would refuse them
    label = f"{wallet_balance(user_id=user.pk):,} credits: grant or adjust"
    return label, reverse("admin:billing_wallet_adjust", args=[user.pk])


def _ledger_link(request: HttpRequest, user: User) -> tuple[str, str]:
    return "Credit ledger", reverse("admin:billing_ledgerentry_changelist") + f"?user__id__exact={user.pk}"


UserAdmin.related_links += [_grant_link, _ledger_link]
