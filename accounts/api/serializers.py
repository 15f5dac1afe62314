from rest_framework import serializers

from accounts.models import ApiKey, KeyMode, Scope
from accounts.selectors import apikey_status
from accounts.services import (
    DEFAULT_KEY_NAME,
    KEY_NAME_MAX_CHARS,
    MAX_ALLOWED_IPS,
    MAX_ALLOWED_MODELS,
    MAX_EXPIRY_DAYS,
    MAX_GRACE_HOURS,
    MAX_MONTHLY_CREDIT_CAP,
    apikey_clean_ips,
    apikey_clean_models,
)
from flixly_site.errors import checked_as
from flixly_site.parsers import StrictJSONSerializer


class ApiKeyOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    mode = serializers.CharField()
    prefix = serializers.CharField()
    lastFour = serializers.CharField(source="last_four")
    scopes = serializers.ListField(child=serializers.CharField())
    createdAt = serializers.DateTimeField(source="created_at")
    lastUsedAt = serializers.DateTimeField(source="last_used_at", allow_null=True)
    lastUsedIp = serializers.IPAddressField(source="last_used_ip", allow_null=True)
    expiresAt = serializers.DateTimeField(source="expires_at")
    rolledAt = serializers.DateTimeField(source="rolled_at", allow_null=True)
    revokedAt = serializers.DateTimeField(source="revoked_at", allow_null=True)
    monthlyCreditCap = serializers.IntegerField(source="monthly_credit_cap", allow_null=True)
    allowedIps = serializers.ListField(source="allowed_ips", child=serializers.CharField())
    allowedModels = serializers.ListField(source="allowed_models", child=serializers.CharField())
    status = serializers.SerializerMethodField()

    def get_status(self, api_key: ApiKey) -> str:
        return apikey_status(api_key=api_key)


class IssuedKeyOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The secret. Shown only in this response: store it now.")


class ApiKeyCreateInput(StrictJSONSerializer):
    name = serializers.CharField(max_length=KEY_NAME_MAX_CHARS, default=DEFAULT_KEY_NAME)
    mode = serializers.ChoiceField(choices=KeyMode.values, default=KeyMode.LIVE)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.values), required=False, allow_empty=False
    )
    expiresInDays = serializers.IntegerField(min_value=1, max_value=MAX_EXPIRY_DAYS, required=False)
    monthlyCreditCap = serializers.IntegerField(
        min_value=1, max_value=MAX_MONTHLY_CREDIT_CAP, required=False, allow_null=True
    )
    # Their counts are checked by the service (after duplicates are dropped), as for the dashboard's form.
    allowedIps = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, help_text=f"At most {MAX_ALLOWED_IPS}."
    )
    allowedModels = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, help_text=f"At most {MAX_ALLOWED_MODELS}."
    )

    # The service checks these again; checked here too, a 422 names them beside the other fields' problems.
    def validate_allowedIps(self, value: list[str]) -> list[str]:  # noqa: N802 (DRF's validate_<field>)
        return checked_as(serializers.ValidationError, apikey_clean_ips, value)

    def validate_allowedModels(self, value: list[str]) -> list[str]:  # noqa: N802
        return checked_as(serializers.ValidationError, apikey_clean_models, value)


class ApiKeyRollInput(StrictJSONSerializer):
    graceHours = serializers.IntegerField(min_value=0, max_value=MAX_GRACE_HOURS, default=0)
