"""Reads for accounts: API key identities (cached) and key listings."""

from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models import QuerySet

from accounts.models import ApiKey, ApiKeySecret, KeyMode, User
from accounts.services import apikey_cache_key, apikey_hash, parse_uuid

IDENTITY_CACHE_SECONDS = 60  # bounds staleness of anything not invalidated explicitly
UNKNOWN = "unknown"


@dataclass(frozen=True)
class KeyIdentity:
    """What the auth layer needs to know about the key behind a request; cached by secret hash."""

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


def apikey_identity(*, raw: str) -> tuple[KeyIdentity, User] | None:
    """The identity and owner of a raw key: one query on a cold cache, none on a warm one."""
    key_hash = apikey_hash(raw)
    cached = cache.get(apikey_cache_key(key_hash))
    if cached == UNKNOWN:
        return None
    if cached is not None:
        return cached
    secret = ApiKeySecret.objects.select_related("api_key__user__plan").filter(key_hash=key_hash).first()
    if secret is None:
        cache.set(apikey_cache_key(key_hash), UNKNOWN, IDENTITY_CACHE_SECONDS)
        return None
    found = (_identity_from(secret), secret.api_key.user)
    cache.set(apikey_cache_key(key_hash), found, IDENTITY_CACHE_SECONDS)
    return found


def apikey_list(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def apikey_get(*, user: User, key_id) -> ApiKey | None:
    key_uuid = parse_uuid(key_id)
    return None if key_uuid is None else ApiKey.objects.filter(user=user, id=key_uuid).first()
