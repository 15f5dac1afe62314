from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiKey, Plan, User
from accounts.services import apikey_forget_plan, apikey_forget_user, apikey_revoke


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
    list_display = ("email", "plan", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("plan", "is_active", "is_staff")
    search_fields = ("email",)
    fieldsets = (
        (None, {"fields": ("email", "password", "plan")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # A plan change or deactivation applies to cached API key identities at once.
        apikey_forget_user(user=obj)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "masked", "user", "mode", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("mode",)
    search_fields = ("name", "user__email", "prefix", "last_four")
    readonly_fields = [f.name for f in ApiKey._meta.fields]
    actions = ["revoke_keys"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created by their owners (or create_api_key), never typed in

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset.select_related("user"):
            apikey_revoke(user=api_key.user, key_id=api_key.id)
        messages.success(request, f"Revoked {queryset.count()} key(s).")
