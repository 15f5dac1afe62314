"""django-allauth customisation: only through this adapter."""

from types import SimpleNamespace
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from accounts.auth import client_ip
from accounts.models import User


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Self-hosters can close sign-up (FLIXLY_SIGNUP_OPEN=false) and create accounts with create_api_key.
        return settings.FLIXLY_SIGNUP_OPEN

    def clean_email(self, email: str) -> str:
        # allauth cuts a longer address to the column's length, and would then mail that other address.
        limit = User._meta.get_field("email").max_length
        if len(email) > limit:
            raise ValidationError(f"An e-mail address can be at most {limit} characters.")
        return super().clean_email(email)

    def get_client_ip(self, request: HttpRequest) -> str:
        # Login and sign-up rate limits count the address the API's allowlists see (FLIXLY_PROXY_HOPS).
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine the client's address.")
        return ip

    def send_confirmation_mail(self, request: HttpRequest, emailconfirmation, signup: bool) -> None:
        # allauth flags only the mail sent at sign-up as one, not the one an unverified account gets when it
        # logs in: the account's own address is a sign-up's to confirm, any other a change of address.
        address = emailconfirmation.email_address
        signs_up = address.email.lower() == address.user.email.lower()
        super().send_confirmation_mail(request, emailconfirmation, signup=signs_up)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # Without django.contrib.sites allauth names the site after the request's host ("Hello from
        # 127.0.0.1:8000!"); the mails name the product and its public address instead.
        site = SimpleNamespace(name="Flixly", domain=urlsplit(settings.SITE_URL).netloc)
        super().send_mail(template_prefix, email, {**context, "current_site": site})
