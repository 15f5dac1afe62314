"""The one API auth layer: Bearer API keys and the dashboard session, a scope permission, plan rate limits.

Every API view uses these through REST_FRAMEWORK's defaults. The authenticated key and rate window
are noted on the Django request so ApiRequestMiddleware can attach the response headers in one place.
"""

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import replace

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from accounts.models import User
from accounts.ratelimit import RateWindow, account_bucket, ratelimit_hit
from accounts.selectors import CachedKey, KeyIdentity, apikey_cached, apikey_load, apikey_version
from accounts.services import apikey_hash, apikey_mark_used, apikey_version_key
from flixly_site.errors import AUTHENTICATE, Forbidden, Unauthorized

KEY_PATTERN = re.compile(r"^flx_(live|test)_[0-9a-f]{40}$")


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from: behind proxies, the X-Forwarded-For entry the nearest of them
    appended for the client (FLIXLY_PROXY_HOPS from the right); else, or when that is not an address, the peer."""
    peer = request.META.get("REMOTE_ADDR")
    if not settings.FLIXLY_BEHIND_PROXY:
        return peer
    entries = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    if len(entries) < settings.FLIXLY_PROXY_HOPS:
        return peer
    try:
        return str(ipaddress.ip_address(entries[-settings.FLIXLY_PROXY_HOPS].strip()))
    except ValueError:
        return peer


def _ip_allowed(ip: str | None, cidrs: tuple[str, ...]) -> bool:
    if not cidrs:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # an IPv4 client reaching a dual-stack socket
    return any(address in ipaddress.ip_network(cidr) for cidr in cidrs)


def _refuse_dead_key(identity: KeyIdentity) -> None:
    now = timezone.now()
    if identity.revoked:
        raise Unauthorized("This API key has been revoked.")
    if identity.secret_valid_until is not None and identity.secret_valid_until <= now:
        raise Unauthorized("This API key was rolled and its old secret no longer works; use the new key.")
    if identity.expires_at <= now:
        raise Unauthorized("This API key has expired; create a new key under Settings -> API Keys.")


@functools.cache
def _read_key_makers(paths: tuple[tuple[str, str], ...]) -> tuple[tuple[str, Callable[[int], str]], ...]:
    return tuple((name, import_string(path)) for name, path in paths)


def _shared_reads(user_id: int) -> dict[str, str]:
    # Other apps name keys to read with the rate-limit count (billing: the mirrored balance), by settings.
    makers = _read_key_makers(tuple(settings.FLIXLY_API_REQUEST_READS.items()))
    return {name: make_key(user_id) for name, make_key in makers}


def count_request(request: HttpRequest, user: User, *, extra_reads: tuple[str, ...] = ()) -> RateWindow:
    """Count the request against the account's plan and read the shared keys it needs: one round trip."""
    names = _shared_reads(user.pk)
    window = ratelimit_hit(
        bucket=account_bucket(user.pk), limit=user.plan.requests_per_minute, reads=(*extra_reads, *names.values())
    )
    request.flixly_rate = window
    request.flixly_reads = {name: window.reads[key] for name, key in names.items()}
    return window


def _bearer_token(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not KEY_PATTERN.match(token):
        raise Unauthorized("Malformed Authorization header: expected 'Bearer flx_live_<40 hex characters>'.")
    return token


def _refuse_for_good(entry: CachedKey, ip: str | None) -> KeyIdentity:
    """Refusals no later change can undo (a key's allowed IPs are fixed when it is made): checked
    before the request counts against the account's limit."""
    if entry.identity is None:
        raise Unauthorized("Unknown API key.")
    _refuse_dead_key(entry.identity)
    if not _ip_allowed(ip, entry.identity.allowed_ips):
        raise Forbidden("This API key is not allowed from your IP address.")
    return entry.identity


def _reload(request: HttpRequest, key_hash: str, version: object, ip: str | None) -> CachedKey:
    """The key changed since this process cached it (revoke, roll, plan or account edit): read it again,
    and take the rate limit from its plan as it is now."""
    entry = apikey_load(key_hash, version=version)
    _refuse_for_good(entry, ip)
    request.flixly_rate = replace(request.flixly_rate, limit=entry.user.plan.requests_per_minute)
    return entry


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authorization: Bearer flx_live_<40 hex> (or flx_test_).

    A warm request costs one shared-store round trip and no SQL: the rate-limit count also reads the
    key's version, and only a changed version (revoke, roll, plan edit) reads the key again.
    """

    def authenticate(self, request: Request) -> tuple[User, KeyIdentity] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None  # no key: the session may still authenticate the request
        key_hash = apikey_hash(_bearer_token(header))
        django_request, ip = request._request, client_ip(request._request)
        entry = apikey_cached(key_hash) or apikey_load(key_hash, version=apikey_version(key_hash))
        _refuse_for_good(entry, ip)
        version_key = apikey_version_key(key_hash)
        window = count_request(django_request, entry.user, extra_reads=(version_key,))
        if window.reads[version_key] != entry.version:
            entry = _reload(django_request, key_hash, window.reads[version_key], ip)
        if not entry.user.is_active:  # after the version check: reactivating applies at once too
            raise Unauthorized("This account is disabled.")
        identity, user = entry.identity, entry.owner()
        apikey_mark_used(key_id=identity.key_id, ip=ip)
        django_request.flixly_user, django_request.flixly_key = user, identity
        return user, identity

    def authenticate_header(self, request: Request) -> str:
        return AUTHENTICATE


class SessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's logged-in session (CSRF enforced on unsafe methods) reaches the same endpoints."""

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        user = getattr(request._request, "user", None)
        if user is not None and user.is_active:
            request._request.flixly_user = user  # before the CSRF check: its 403 carries the headers too
        return super().authenticate(request)


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
    """Requests per minute from the account's plan, counted per account across all its keys and sessions.

    An API key's request was already counted by ApiKeyAuthentication, in the round trip that checked
    the key; a session's is counted here.
    """

    def allow_request(self, request: Request, view) -> bool:
        window = getattr(request._request, "flixly_rate", None)
        if window is None:
            user = request.user
            if not (user and user.is_authenticated):
                return True
            window = count_request(request._request, user)
        self.retry_after = window.reset
        return window.allowed

    def wait(self) -> float:
        return self.retry_after
