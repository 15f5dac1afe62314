"""The one API auth layer: Bearer API keys and the dashboard session, a scope permission, plan rate limits.

Every API view uses these through REST_FRAMEWORK's defaults. The authenticated key and rate window
are noted on the Django request so ApiRequestMiddleware can attach the response headers in one place.
"""

import ipaddress
import re

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from accounts.models import User
from accounts.ratelimit import ratelimit_hit
from accounts.selectors import KeyIdentity, apikey_identity
from accounts.services import apikey_mark_used
from flixly_site.errors import Forbidden, Unauthorized

KEY_PATTERN = re.compile(r"^flx_(live|test)_[0-9a-f]{40}$")


def client_ip(request: HttpRequest) -> str | None:
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")


def _ip_allowed(ip: str | None, cidrs: tuple[str, ...]) -> bool:
    if not cidrs:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr) for cidr in cidrs)


def _refuse_dead_key(identity: KeyIdentity, user: User) -> None:
    now = timezone.now()
    if identity.revoked:
        raise Unauthorized("This API key has been revoked.")
    if identity.secret_valid_until is not None and identity.secret_valid_until <= now:
        raise Unauthorized("This API key was rolled and its old secret no longer works; use the new key.")
    if identity.expires_at <= now:
        raise Unauthorized("This API key has expired; create or roll a key under Settings -> API Keys.")
    if not user.is_active:
        raise Unauthorized("This account is disabled.")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authorization: Bearer flx_live_<40 hex> (or flx_test_)."""

    def authenticate(self, request: Request) -> tuple[User, KeyIdentity] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None  # no key: the session may still authenticate the request
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not KEY_PATTERN.match(token):
            raise Unauthorized("Malformed Authorization header: expected 'Bearer flx_live_<40 hex characters>'.")
        found = apikey_identity(raw=token)
        if found is None:
            raise Unauthorized("Unknown API key.")
        identity, user = found
        _refuse_dead_key(identity, user)
        ip = client_ip(request._request)
        if not _ip_allowed(ip, identity.allowed_ips):
            raise Forbidden("This API key is not allowed from your IP address.")
        apikey_mark_used(key_id=identity.key_id, ip=ip)
        request._request.flixly_user = user
        request._request.flixly_key = identity
        return user, identity

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's logged-in session (CSRF enforced on unsafe methods) reaches the same endpoints."""

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        result = super().authenticate(request)
        if result is not None:
            request._request.flixly_user = result[0]
        return result


class HasScope(permissions.BasePermission):
    """Authenticated, and the key carries the view's `required_scope`. A session has every scope."""

    def has_permission(self, request: Request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated("Authentication required: send 'Authorization: Bearer <your API key>'.")
        scope = getattr(view, "required_scope", None)
        identity = request.auth if isinstance(request.auth, KeyIdentity) else None
        if scope and identity is not None and scope not in identity.scopes:
            raise Forbidden(f"This API key lacks the '{scope}' scope.")
        return True


class PlanRateThrottle(throttling.BaseThrottle):
    """Requests per minute from the account's plan, counted per account across all its keys."""

    def allow_request(self, request: Request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return True
        window = ratelimit_hit(bucket=f"user:{user.pk}", limit=user.plan.requests_per_minute)
        request._request.flixly_rate = window
        self.retry_after = window.reset
        return window.allowed

    def wait(self) -> float:
        return self.retry_after
