"""django-allauth customisation: only through this adapter."""

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Self-hosters can close sign-up (FLIXLY_SIGNUP_OPEN=false) and create accounts with create_api_key.
        return settings.FLIXLY_SIGNUP_OPEN

    def get_from_email(self) -> str:
        return settings.DEFAULT_FROM_EMAIL
