import re

from django import forms

from accounts.models import DEFAULT_SCOPES, KeyMode, Scope
from accounts.services import (
    DEFAULT_EXPIRY_DAYS,
    KEY_NAME_MAX_CHARS,
    MAX_EXPIRY_DAYS,
    MAX_GRACE_HOURS,
    MAX_MONTHLY_CREDIT_CAP,
    apikey_clean_ips,
    apikey_clean_models,
)
from flixly_site.errors import checked_as
from flixly_site.forms import SubmitOnceField


def _split(value: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", value or "") if item]


class ApiKeyCreateForm(forms.Form):
    once = SubmitOnceField()
    name = forms.CharField(
        max_length=KEY_NAME_MAX_CHARS, widget=forms.TextInput(attrs={"placeholder": "e.g. Production server"})
    )
    mode = forms.ChoiceField(
        choices=KeyMode.choices,
        initial=KeyMode.LIVE,
        widget=forms.RadioSelect,
        help_text="Test keys are never charged and always run on the built-in local engine.",
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        initial=DEFAULT_SCOPES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)", min_value=1, max_value=MAX_EXPIRY_DAYS, initial=DEFAULT_EXPIRY_DAYS
    )
    monthly_credit_cap = forms.IntegerField(
        label="Monthly credit cap",
        min_value=1,
        max_value=MAX_MONTHLY_CREDIT_CAP,
        required=False,
        help_text="Optional. Empty means no cap.",
    )
    allowed_ips = forms.CharField(
        label="Allowed IPs", required=False, help_text="Optional CIDRs, comma separated. Empty allows any address."
    )
    allowed_models = forms.CharField(
        label="Allowed models", required=False, help_text="Optional catalog ids, comma separated. Empty allows all."
    )

    # The service checks these again; checked here too, they show beside the form's own errors at once.
    def clean_allowed_ips(self) -> list[str]:
        return checked_as(forms.ValidationError, apikey_clean_ips, _split(self.cleaned_data["allowed_ips"]))

    def clean_allowed_models(self) -> list[str]:
        return checked_as(forms.ValidationError, apikey_clean_models, _split(self.cleaned_data["allowed_models"]))


class ApiKeyRollForm(forms.Form):
    once = SubmitOnceField()
    grace_hours = forms.IntegerField(
        label="Keep the old secret working for (hours)",
        min_value=0,
        max_value=MAX_GRACE_HOURS,
        initial=0,
        help_text="0 stops the old secret at once; up to 24 hours gives your deployments time to switch.",
    )
