"""Reads for accounts: API key identities (cached in each process) and key listings.

Identities are cached in the process that read them, with the key's version from the shared store.
Every authenticated request reads that version in the same round trip as its rate-limit count
(accounts.auth); revoke, roll and account changes bump it (accounts.services.apikey_cache_forget),
so a changed key is read again from the database on its next request, in every process.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from django.core.cache import cache
from django.db.models import Max, Model, Q, QuerySet
from django.db.models.base import ModelState
from django.utils import timezone

from accounts.models import ApiKey, ApiKeySecret, KeyMode, User
from accounts.services import apikey_version_key
from flixly_site.errors import ServiceUnavailable
from flixly_site.parsers import parse_uuid
from flixly_site.shared import redis_client

IDENTITY_CACHE_SECONDS = 60  # bounds staleness of anything not invalidated explicitly
MAX_CACHED_IDENTITIES = 50_000  # a flood of made-up keys cannot grow a process without bound


@dataclass(frozen=True)
class KeyIdentity:
    """What the auth layer needs to know about the key behind a request."""

    key_id: str
    mode: str
    masked: str
    scopes: frozenset[str]
    expires_at: datetime
    secret_valid_until: datetime | None
    revoked: bool
    allowed_ips: tuple[str, ...]
    allowed_models: tuple[str, ...]
    monthly_credit_cap: int | None

    @property
    def is_test(self) -> bool:
        return self.mode == KeyMode.TEST


@dataclass(frozen=True)
class CachedKey:
    identity: KeyIdentity | None  # None: no key has this hash
    user: User | None
    version: Any  # the key's version in the shared store when it was read from the database
    fresh_until: float  # time.monotonic()

    def owner(self) -> User:
        # A copy per request: views may cache related objects on it, and threads share this entry.
        return shallow_copy(self.user)


def shallow_copy(instance: Model) -> Model:
    """What copy.copy makes of a model instance (its own state and related-object cache, the same field
    values), built directly: copy.copy's pickling detour cost a tenth of a keyed request's CPU."""
    clone = instance.__class__.__new__(instance.__class__)
    clone.__dict__.update(instance.__dict__)
    state = ModelState.__new__(ModelState)
    state.__dict__.update(instance._state.__dict__)
    state.__dict__.pop("peers", None)  # as ModelState.__getstate__: peers belong to the original's queryset
    state.fields_cache = dict(instance._state.fields_cache)
    clone._state = state
    return clone


_cached: dict[str, CachedKey] = {}


def _identity_from(secret: ApiKeySecret) -> KeyIdentity:
    key = secret.api_key
    return KeyIdentity(
        key_id=str(key.id),
        mode=key.mode,
        masked=key.masked,
        scopes=frozenset(key.scopes),
        expires_at=key.expires_at,
        secret_valid_until=secret.valid_until,
        revoked=key.revoked_at is not None,
        allowed_ips=tuple(key.allowed_ips),
        allowed_models=tuple(key.allowed_models),
        monthly_credit_cap=key.monthly_credit_cap,
    )


def apikey_cached(key_hash: str) -> CachedKey | None:
    entry = _cached.get(key_hash)
    return entry if entry is not None and entry.fresh_until > time.monotonic() else None


def apikey_version(key_hash: str) -> Any:
    client = redis_client()
    key = apikey_version_key(key_hash)
    if client is None:
        return cache.get(key)
    try:
        return client.get(key)
    except redis.RedisError:
        raise ServiceUnavailable(
            "API keys cannot be checked right now; nothing was charged. Try again shortly."
        ) from None


def apikey_load(key_hash: str, *, version: Any) -> CachedKey:
    """Read a key from the database (one query) and cache it with `version`, read *before* this call:
    a change committed meanwhile bumps the version after its commit, so the next request reloads."""
    secret = ApiKeySecret.objects.select_related("api_key__user__plan").filter(key_hash=key_hash).first()
    entry = CachedKey(
        identity=_identity_from(secret) if secret else None,
        user=secret.api_key.user if secret else None,
        version=version,
        fresh_until=time.monotonic() + IDENTITY_CACHE_SECONDS,
    )
    if len(_cached) >= MAX_CACHED_IDENTITIES:
        _cached.clear()
    _cached[key_hash] = entry
    return entry


def apikey_drop_cached() -> None:
    """Forget every identity this process cached (tests start from a clean slate)."""
    _cached.clear()


def apikey_list(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def apikey_active_count(*, user: User) -> int:
    """How many of the account's keys still work: neither revoked nor expired (apikey_status "active")."""
    return apikey_list(user=user).filter(revoked_at__isnull=True, expires_at__gt=timezone.now()).count()


def apikey_list_for_page(*, user: User) -> QuerySet[ApiKey]:
    """The keys page's list: also until when a rolled key's old secret still works (`grace_until`)."""
    in_grace = Q(secrets__valid_until__gt=timezone.now())
    return apikey_list(user=user).annotate(grace_until=Max("secrets__valid_until", filter=in_grace))


def apikey_status(*, api_key: ApiKey) -> str:
    """What the API and the keys page say of a key: revoked, expired or active."""
    if api_key.revoked_at:
        return "revoked"
    if api_key.expires_at <= timezone.now():
        return "expired"
    return "active"


def apikey_grace_until(*, api_key: ApiKey) -> datetime | None:
    """Until when a secret the key was rolled past still works; None when none does."""
    in_grace = api_key.secrets.filter(valid_until__gt=timezone.now())
    return in_grace.aggregate(until=Max("valid_until"))["until"]


def apikey_get(*, user: User, key_id) -> ApiKey | None:
    key_uuid = parse_uuid(key_id)
    return None if key_uuid is None else ApiKey.objects.filter(user=user, id=key_uuid).first()
