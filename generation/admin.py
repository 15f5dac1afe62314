from pathlib import PurePosixPath
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminIntegerFieldWidget
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.admin import UserAdmin
from billing.admin import LedgerEntryAdmin
from flixly_site.admin_lists import BigTableAdmin, ChoicesFilter, CreatedFilter
from flixly_site.parsers import parse_uuid
from generation.catalog import catalog_forget
from generation.models import (
    ACTIVE_STATUSES,
    TYPE_LABELS,
    AiModel,
    Job,
    JobEvent,
    WebhookDelivery,
    WebhookEndpoint,
    WorkerNode,
)
from generation.outputs import output_url
from generation.pricing import catalog_problems
from generation.services import job_fail
from generation.webhooks import PING, delivery_answer


class AiModelForm(forms.ModelForm):
    """Every request a model's parameters allow must have a price (a negative tier price, a duration past the
    price table, min above max failed submits with a 500): checked here, before it is saved. No Meta: the
    admin builds the form with every field it shows."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        checked = ("types", "pricing", "params", "credits")
        if any(field in self.fields and field not in cleaned for field in checked):
            return cleaned  # a field already has its own error
        # The model list edits only some fields: the rest are the model's own.
        values = {field: cleaned.get(field, getattr(self.instance, field)) for field in checked}
        for field, problems in catalog_problems(AiModel(**values)).items():
            self.add_error(field if field in self.fields else None, problems)
        return cleaned


@admin.register(AiModel)
class AiModelAdmin(admin.ModelAdmin):
    form = AiModelForm
    # The time limit is on each model's page: with it the list did not fit a 1280 px screen.
    list_display = ("id", "name", "vendor", "route", "credits", "enabled")
    list_filter = ("route", "enabled", "staff_edited", "vendor")
    list_editable = ("enabled", "credits")
    # Credits is a bigint like the ledger's amounts, but a price fits the narrow input: the list fits a laptop.
    formfield_overrides = {models.PositiveBigIntegerField: {"widget": AdminIntegerFieldWidget}}
    search_fields = ("id", "name", "vendor", "upstream_model")
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: AiModel | None = None) -> tuple[str, ...]:
        # A changed primary key saves a second model beside the first: the id is fixed once made.
        return ("id", *self.readonly_fields) if obj else self.readonly_fields

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm]:
        return super().get_changelist_form(request, form=AiModelForm, **kwargs)

    def save_model(self, request: HttpRequest, obj: AiModel, form, change: bool) -> None:
        # A save here is staff's choice, kept by the next sync_catalog; unless staff just unticked that.
        if not (change and "staff_edited" in form.changed_data and not obj.staff_edited):
            obj.staff_edited = True
        super().save_model(request, obj, form, change)
        catalog_forget()

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        catalog_forget()


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "at", "data")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class JobTypeFilter(ChoicesFilter):
    title = "type"
    field = "type"
    options = tuple(TYPE_LABELS.items())


@admin.register(Job)
class JobAdmin(BigTableAdmin):
    # Type and credits share their neighbours' columns: with a column each the list did not fit a 1280 px screen.
    list_display = ("job", "user", "model_and_type", "status_and_credits", "created_at")
    list_select_related = ("user", "model")
    list_filter = (CreatedFilter, "status", JobTypeFilter, "route", "is_test")
    # job_recent (-created_at, -id) serves the newest or the oldest first, and job_user_recent one account's
    # jobs. Every other column sorts every row (by account: 300k rows for a busy one); an id sorts by its own
    # index but in no useful order.
    sortable_by = ("created_at",)
    search_help_text = "Search by a job's full id, an account's e-mail address or a model's id (exact)."
    exclude = ("outputs",)
    readonly_fields = [*(f.name for f in Job._meta.fields if f.name != "outputs"), "files"]
    inlines = [JobEventInline]
    actions = ["fail_and_refund"]

    @admin.display(description="Job", ordering="id")
    def job(self, job: Job) -> str:
        return str(job.pk)[:8]  # search takes the whole id

    @admin.display(description="Model")
    def model_and_type(self, job: Job) -> str:
        return format_html("{}<br>{}", job.model.name, TYPE_LABELS.get(job.type, job.type))

    @admin.display(description="Status")
    def status_and_credits(self, job: Job) -> str:
        refunded = f" (refunded {job.credits_refunded})" if job.credits_refunded else ""
        return format_html("{}<br>{} credits{}", job.get_status_display(), job.credits_charged, refunded)

    @admin.display(description="Files")
    def files(self, job: Job) -> str:
        return (
            format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> ({})', (_file_link(o) for o in job.outputs)) or "-"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # The list's actions need it; a job's own page is a record with nothing to edit (no Save button).
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False  # a job is the record its ledger rows, events and outputs point to

    @admin.action(permissions=["change"], description="Fail and refund selected unfinished jobs")
    def fail_and_refund(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        failed = 0
        for job in queryset.filter(status__in=ACTIVE_STATUSES):
            if job_fail(job_id=job.pk, detail=f"failed by staff {request.user}"):
                self.log_change(request, job, "Failed and refunded by the admin action.")
                failed += 1
        messages.success(request, f"Failed and refunded {failed} job{pluralize(failed)}.")

    def search_by(self, request: HttpRequest, queryset: QuerySet[Job], term: str) -> QuerySet[Job] | None:
        if job_id := parse_uuid(term):
            return queryset.filter(pk=job_id)
        if AiModel.objects.filter(pk=term).exists():
            return queryset.filter(model_id=term)
        return None


def _file_link(output: dict) -> tuple[str, str, str]:
    size = f", {output['width']}x{output['height']}" if output.get("width") else ""
    seconds = f", {output['durationSeconds']} s" if output.get("durationSeconds") else ""
    about = f"{output['contentType']}{size}{seconds}, {output.get('bytes') or 0:,} bytes"
    return output_url(output["name"]), PurePosixPath(output["name"]).name, about


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("user", "url", "updated_at")
    search_fields = ("user__email", "url")
    exclude = ("secret",)  # the account's signing key: staff never need to read it
    readonly_fields = ("user", "url", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # set by the account (a new secret is shown to its owner once)


# The events generation.webhooks records: the job's, the account's (flixly_site.events) and the test event.
WEBHOOK_EVENTS = ("job.completed", "job.failed", "job.refunded", "key.rolled", "key.expiring", "credits.low", PING)


class DeliveryEventFilter(ChoicesFilter):
    title = "event"
    field = "event"
    options = tuple((event, event) for event in WEBHOOK_EVENTS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(BigTableAdmin):
    # A delivery shows by its id's first characters, and its attempts, last answer and error share the status's
    # column: with whole ids and a column each the list did not fit a 1280 px screen.
    list_display = ("delivery", "user", "event", "outcome", "created_at")
    list_select_related = ("user",)
    list_filter = (CreatedFilter, "status", DeliveryEventFilter)
    # delivery_user_recent (user, -created_at, -id) serves one account's deliveries newest first; every other
    # column sorts every row.
    sortable_by = ("created_at",)
    search_help_text = "Search by a delivery's or its job's full id, or an account's e-mail address (exact)."
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    @admin.display(description="Delivery", ordering="id")
    def delivery(self, delivery: WebhookDelivery) -> str:
        return str(delivery.pk)[:8]  # search takes the whole id

    @admin.display(description="Status")
    def outcome(self, delivery: WebhookDelivery) -> str:
        attempts = f"{delivery.attempts} attempt{pluralize(delivery.attempts)}"
        lines = [f"{delivery.get_status_display()} after {attempts}" if delivery.attempts else "Not sent yet"]
        lines += [answer] if (answer := delivery_answer(delivery)) else []
        if delivery.error and delivery.error != f"HTTP {delivery.status_code}.":  # that one says no more
            lines.append(delivery.error)
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False  # a record of what was sent: nothing on it to edit (no Save button)

    def has_delete_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False  # the customer's deliveries list reads the same rows

    def search_by(self, request: HttpRequest, queryset: QuerySet, term: str) -> QuerySet | None:
        if some_id := parse_uuid(term):
            # job_id has no index: a job's deliveries are found among its account's, by delivery_user_recent
            owner = Job.objects.filter(pk=some_id).values_list("user_id", flat=True).first()
            if owner is not None:
                return queryset.filter(user_id=owner, job_id=some_id)
            return queryset.filter(pk=some_id)
        return None


@admin.register(WorkerNode)
class WorkerNodeAdmin(admin.ModelAdmin):
    """Each worker node and its last heartbeat (the database's clock): a node silent for FLIXLY_WORKER_LOST_AFTER
    has its running jobs taken back by the reaper. Written by the nodes alone."""

    list_display = ("name", "seen_at")
    search_fields = ("name",)
    readonly_fields = ("name", "seen_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WorkerNode | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WorkerNode | None = None) -> bool:
        return False  # a live node's row comes back at its next beat; the long gone are forgotten by beat


UserAdmin.related_links.append(
    lambda request, user: ("Jobs", reverse("admin:generation_job_changelist") + f"?user__id__exact={user.pk}")
)
LedgerEntryAdmin.reference_pages["job"] = lambda job_id: reverse("admin:generation_job_change", args=[job_id])
