"""django-allauth customisation: only through this adapter."""

from types import SimpleNamespace
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Self-hosters can close sign-up (FLIXLY_SIGNUP_OPEN=false) and create accounts with create_api_key.
        return settings.FLIXLY_SIGNUP_OPEN

    def get_from_email(self) -> str:
        return settings.DEFAULT_FROM_EMAIL

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # Without django.contrib.sites allauth names the site after the request's host ("Hello from
        # 127.0.0.1:8000!"); the mails name the product and its public address instead.
        site = SimpleNamespace(name="Flixly", domain=urlsplit(settings.SITE_URL).netloc)
        super().send_mail(template_prefix, email, {**context, "current_site": site})
