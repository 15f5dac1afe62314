"""Form pieces shared by the dashboard's apps."""

import secrets

from django import forms
from django.core.cache import cache

FORM_TOKEN_SECONDS = 24 * 3600


class SubmitOnceField(forms.CharField):
    """A hidden token, new on every render of the form. A page that creates something on POST spends it
    with `form_token_spend`, so a reload, a Back-and-resubmit or a double click does not do it twice."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        kwargs.setdefault("initial", lambda: secrets.token_urlsafe(18))
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("error_messages", {"required": "This form has expired: reload the page and try again."})
        super().__init__(**kwargs)


def form_token_spend(token: str) -> bool:
    """True the first time `token` is spent; False for a form that was already sent."""
    return cache.add(f"form-token:{token}", 1, FORM_TOKEN_SECONDS)
