from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import ApiKey, Plan, User
from accounts.services import (
    apikey_forget_plan,
    apikey_forget_user,
    apikey_revoke,
    user_deactivate,
    user_set_email,
)
from flixly_site.admin_lists import list_time


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "requests_per_minute", "parallel_tasks", "monthly_credits", "price_cents")
    ordering = ("sort_order",)

    def get_readonly_fields(self, request: HttpRequest, obj: Plan | None = None) -> tuple[str, ...]:
        # Accounts point at plans by slug: renaming one would orphan them.
        return ("slug",) if obj else ()

    def save_model(self, request: HttpRequest, obj: Plan, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        apikey_forget_plan(plan=obj)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("-date_joined",)
    # Staff status is a filter, not a column: with it the list did not fit a 1280 px screen.
    list_display = ("email", "plan", "is_active", "date_joined", "last_login")
    list_filter = ("plan", "is_active", "is_staff")
    search_fields = ("email",)
    fieldsets = (
        (None, {"fields": ("email", "password", "plan")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    actions = ["deactivate"]
    # (label, url) of the account's pages in other apps (billing: its credits; generation: its jobs), added
    # by those apps' admin modules: this app imports neither. None leaves out a link the staff member may
    # not follow. Shown on the account's page by its change_form.html.
    related_links: list[Callable[[HttpRequest, User], tuple[str, str] | None]] = [
        lambda request, user: ("API keys", reverse("admin:accounts_apikey_changelist") + f"?user__id__exact={user.pk}")
    ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            links = (link(request, obj) for link in self.related_links)
            context["related_links"] = [link for link in links if link]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        # "Can change user" must not be a way to every other permission (billing.adjust_credits among them).
        if request.user.is_superuser:
            return self.readonly_fields
        return (*self.readonly_fields, "is_staff", "is_superuser", "groups", "user_permissions")

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # Whoever sets a staff member's password or address can sign in as them, with their permissions.
        if obj is not None and not _may_manage(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False  # the account's ledger is the record of its money: deactivate it instead

    @admin.action(
        permissions=["change"], description="Deactivate selected accounts (their keys and sessions stop working)"
    )
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        if not request.user.is_superuser:
            queryset = queryset.filter(is_staff=False, is_superuser=False)  # as their pages: customers only
        for user in queryset.filter(is_active=True):
            if user_deactivate(user=user):
                self.log_change(request, user, "Deactivated by the admin action.")
        messages.success(request, "Deactivated; reactivate an account by ticking Active on its page.")

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if deactivating:
            obj.is_active = True  # user_deactivate below turns it off, with all that follows from it
        super().save_model(request, obj, form, change)
        if not change or "email" in form.changed_data:  # staff vouch for the address they set: no e-mail to prove it
            user_set_email(user=obj, email=obj.email)
        if deactivating:
            user_deactivate(user=obj)  # drops the cached key identities too
        else:  # a plan change applies to cached API key identities at once
            apikey_forget_user(user=obj)


def _may_manage(staff: User, account: User) -> bool:
    """Superusers manage every account; other staff manage customers' and their own."""
    return staff.is_superuser or account == staff or not (account.is_staff or account.is_superuser)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    # The key's prefix names its mode (flx_live_, flx_test_), and revocation and expiry share a column: with a
    # column each the list did not fit a 1280 px screen.
    list_display = ("name", "masked", "user", "created_at", "last_used_at", "status")
    list_select_related = ("user",)
    list_filter = ("mode",)
    search_fields = ("name", "user__email", "prefix", "last_four")
    readonly_fields = [f.name for f in ApiKey._meta.fields]
    actions = ["revoke_keys"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created by their owners (or create_api_key), never typed in

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        # Revocation stops a key at once, everywhere; a deletion left cached copies working and lost the
        # record of the key its ledger rows name.
        return False

    @admin.display(description="Status", ordering="expires_at")
    def status(self, api_key: ApiKey) -> str:
        if api_key.revoked_at:
            return format_html("Revoked<br>{}", list_time(api_key.revoked_at))
        ended = api_key.expires_at <= timezone.now()
        return format_html("{}<br>{}", "Expired" if ended else "Expires", list_time(api_key.expires_at))

    @admin.action(permissions=["change"], description="Revoke selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        live = list(queryset.filter(revoked_at__isnull=True).select_related("user"))
        for api_key in live:
            apikey_revoke(user=api_key.user, key_id=api_key.id)
            self.log_change(request, api_key, "Revoked by the admin action.")
        messages.success(request, f"Revoked {len(live)} key{pluralize(len(live))}.")
