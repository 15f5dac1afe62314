"""Writes for accounts: API keys and plans. Views, API views, commands and tasks call these."""

import hmac
import ipaddress
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from allauth.account.models import EmailAddress
from allauth.account.signals import email_changed
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import DEFAULT_SCOPES, ApiKey, ApiKeySecret, KeyMode, Plan, Scope, User
from accounts.signals import account_deactivated
from flixly_site.errors import Forbidden, NotFound, ValidationFailed, every_check
from flixly_site.events import account_event
from flixly_site.mail import mail_user
from flixly_site.pagination import iso_utc
from flixly_site.parsers import parse_uuid
from flixly_site.shared import redis_client

logger = logging.getLogger("flixly.keys")

DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 365
MAX_MONTHLY_CREDIT_CAP = 1_000_000_000  # within the column's 32-bit range, and more than any account spends
MAX_GRACE_HOURS = 24
KEY_NAME_MAX_CHARS = ApiKey._meta.get_field("name").max_length
VISIBLE_PREFIX_CHARS = 4  # hex characters shown after flx_live_ / flx_test_
LAST_USED_WRITE_INTERVAL = 60  # seconds: last_used_at is written at most once a minute per key


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    raw: str  # shown to the user exactly once, never stored


def apikey_hash(raw: str) -> str:
    return hmac.digest(settings.FLIXLY_KEY_PEPPER.encode(), raw.encode(), "sha256").hex()


def apikey_version_key(key_hash: str) -> str:
    return f"apikey-v:{key_hash}"


def _new_secret(mode: str) -> str:
    return f"flx_{mode}_{secrets.token_hex(20)}"


def _visible_parts(raw: str) -> tuple[str, str]:
    head = raw[: len("flx_live_") + VISIBLE_PREFIX_CHARS]
    return head, raw[-4:]


def _clean_scopes(scopes: list[str] | None) -> list[str]:
    if scopes is None:
        return list(DEFAULT_SCOPES)
    valid = set(Scope.values)
    unknown = sorted(set(scopes) - valid)
    if unknown:
        raise ValidationFailed(details={"scopes": [f"Unknown scope {s!r}; use {sorted(valid)}." for s in unknown]})
    if not scopes:
        raise ValidationFailed(details={"scopes": ["A key needs at least one scope."]})
    return [s for s in Scope.values if s in scopes]


DEFAULT_KEY_NAME = "API key"  # a key created through the API without a name
MAX_ALLOWED_IPS = 50
MAX_ALLOWED_MODELS = 200


def apikey_clean_ips(allowed_ips: list[str] | None) -> list[str]:
    """A key's allowed IPs as networks, each once; every entry that is not one is named in the 422."""
    cleaned, bad = [], []
    for cidr in allowed_ips or []:
        try:
            cleaned.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            bad.append(f"{cidr!r} is not an IP address or CIDR.")
    if bad:
        raise ValidationFailed(details={"allowedIps": bad})
    cleaned = list(dict.fromkeys(cleaned))
    if len(cleaned) > MAX_ALLOWED_IPS:
        message = f"At most {MAX_ALLOWED_IPS} addresses or networks; {len(cleaned)} were given."
        raise ValidationFailed(details={"allowedIps": [message]})
    return cleaned


def _clean_cap(monthly_credit_cap: int | None) -> int | None:
    if monthly_credit_cap is not None and not 1 <= monthly_credit_cap <= MAX_MONTHLY_CREDIT_CAP:
        raise ValidationFailed(
            details={"monthlyCreditCap": [f"Must be between 1 and {MAX_MONTHLY_CREDIT_CAP:,} credits, or empty."]}
        )
    return monthly_credit_cap


def apikey_clean_models(allowed_models: list[str] | None) -> list[str]:
    models = sorted({m.strip() for m in allowed_models or [] if m.strip()})
    if len(models) > MAX_ALLOWED_MODELS:
        raise ValidationFailed(
            details={"allowedModels": [f"At most {MAX_ALLOWED_MODELS} models; {len(models)} were given."]}
        )
    # The catalog belongs to generation, which plugs its check in through settings.
    check = settings.FLIXLY_UNKNOWN_MODEL_IDS
    unknown = import_string(check)(models) if models and check else []
    if unknown:
        raise ValidationFailed(
            details={"allowedModels": [f"No model {m!r} in the catalog; see GET /api/v1/models." for m in unknown]}
        )
    return models


def _clean_expiry(expires_in_days: int | None) -> int:
    days = DEFAULT_EXPIRY_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= MAX_EXPIRY_DAYS:
        raise ValidationFailed(details={"expiresInDays": [f"Must be between 1 and {MAX_EXPIRY_DAYS} days."]})
    return days


def apikey_create(
    *,
    user: User,
    name: str,
    mode: str = KeyMode.LIVE,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
    monthly_credit_cap: int | None = None,
    allowed_ips: list[str] | None = None,
    allowed_models: list[str] | None = None,
    test_keys_only: bool = False,
) -> IssuedKey:
    """A new key. `test_keys_only` when a test key asks: it may not mint keys that spend real credits."""
    if mode not in KeyMode.values:
        raise ValidationFailed(details={"mode": [f"Must be one of {KeyMode.values}."]})
    if len(name) > KEY_NAME_MAX_CHARS or "\x00" in name:
        raise ValidationFailed(details={"name": [f"At most {KEY_NAME_MAX_CHARS} characters, and no null characters."]})
    _refuse_live(mode, test_keys_only)
    raw = _new_secret(mode)
    prefix, last_four = _visible_parts(raw)
    checked = every_check(
        scopes=lambda: _clean_scopes(scopes),
        days=lambda: _clean_expiry(expires_in_days),
        cap=lambda: _clean_cap(monthly_credit_cap),
        ips=lambda: apikey_clean_ips(allowed_ips),
        models=lambda: apikey_clean_models(allowed_models),
    )
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user,
            name=name.strip() or "Untitled key",
            mode=mode,
            prefix=prefix,
            last_four=last_four,
            scopes=checked["scopes"],
            expires_at=timezone.now() + timedelta(days=checked["days"]),
            monthly_credit_cap=checked["cap"],
            allowed_ips=checked["ips"],
            allowed_models=checked["models"],
        )
        ApiKeySecret.objects.create(api_key=api_key, key_hash=apikey_hash(raw))
    logger.info("api key created id=%s key=%s user=%s", api_key.id, api_key.masked, user.pk)
    return IssuedKey(api_key=api_key, raw=raw)


def _refuse_live(mode: str, test_keys_only: bool) -> None:
    if test_keys_only and mode != KeyMode.TEST:
        raise Forbidden("A test key can only create, roll or revoke test keys.")


def _owned_key(user: User, key_id, test_keys_only: bool) -> ApiKey:
    # Another account's key is "not found", never "forbidden": ids do not leak.
    key_uuid = parse_uuid(key_id)
    api_key = None if key_uuid is None else ApiKey.objects.select_for_update().filter(id=key_uuid, user=user).first()
    if api_key is None:
        raise NotFound("No API key with that id.")
    _refuse_live(api_key.mode, test_keys_only)
    return api_key


def apikey_roll(*, user: User, key_id, grace_hours: int = 0, test_keys_only: bool = False) -> IssuedKey:
    if not 0 <= grace_hours <= MAX_GRACE_HOURS:
        raise ValidationFailed(details={"graceHours": [f"Must be between 0 and {MAX_GRACE_HOURS}."]})
    now = timezone.now()
    with transaction.atomic():
        api_key = _owned_key(user, key_id, test_keys_only)
        if api_key.revoked_at:
            raise ValidationFailed("A revoked key cannot be rolled.", details={"id": ["This key is revoked."]})
        if api_key.expires_at <= now:  # rolling keeps the expiry date: the new secret would be dead already
            message = "An expired key cannot be rolled: create a new key."
            raise ValidationFailed(message, details={"id": ["This key has expired."]})
        grace_end = now + timedelta(hours=grace_hours)
        # Every older secret dies at the end of this grace at the latest.
        api_key.secrets.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=grace_end)).update(valid_until=grace_end)
        old_hashes = list(api_key.secrets.values_list("key_hash", flat=True))
        raw = _new_secret(api_key.mode)
        api_key.prefix, api_key.last_four = _visible_parts(raw)
        api_key.rolled_at = now
        api_key.save(update_fields=["prefix", "last_four", "rolled_at"])
        ApiKeySecret.objects.create(api_key=api_key, key_hash=apikey_hash(raw))
        apikey_cache_forget(old_hashes)
        rolled = {**_key_event_data(api_key), "oldKeyValidUntil": iso_utc(grace_end)}
        account_event(user_id=user.pk, event="key.rolled", data=rolled)
    logger.info("api key rolled id=%s key=%s grace_hours=%s", api_key.id, api_key.masked, grace_hours)
    return IssuedKey(api_key=api_key, raw=raw)


def apikey_revoke(*, user: User, key_id, test_keys_only: bool = False) -> ApiKey:
    """Revocation is final and immediate; revoking twice is a no-op."""
    with transaction.atomic():
        api_key = _owned_key(user, key_id, test_keys_only)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            hashes = list(api_key.secrets.values_list("key_hash", flat=True))
            apikey_cache_forget(hashes)
            logger.info("api key revoked id=%s key=%s", api_key.id, api_key.masked)
    return api_key


VERSION_KEEP_SECONDS = 24 * 3600  # far longer than a process caches an identity


def apikey_cache_forget(key_hashes: list[str]) -> None:
    """Once the current transaction commits, bump the keys' versions: every process then reads them
    again from the database on their next request (a bump before the commit could cache old rows)."""
    transaction.on_commit(lambda: _bump_versions(key_hashes))


def _bump_versions(key_hashes: list[str]) -> None:
    # A fresh random value, never a counter: a counter that restarts (expiry, a Redis restart) could
    # come back to the very value a process cached and hide the change from it.
    client = redis_client()
    versions = {apikey_version_key(h): uuid.uuid4().hex for h in key_hashes}
    if client is None:
        cache.set_many(versions, VERSION_KEEP_SECONDS)
        return
    for attempt in range(3):
        try:
            pipe = client.pipeline(transaction=False)
            for key, version in versions.items():
                pipe.set(key, version, ex=VERSION_KEEP_SECONDS)
            pipe.execute()
            return
        except redis.RedisError as error:
            failure = error
            time.sleep(0.1 * (attempt + 1))
    # The change is committed: processes that cached these keys notice within IDENTITY_CACHE_SECONDS.
    logger.error(
        "could not publish API key changes to Redis (%s): cached copies expire within a minute", type(failure).__name__
    )


def apikey_forget_user(*, user: User) -> None:
    """Drop cached identities after an account change (plan, deactivation) so it applies at once."""
    hashes = ApiKeySecret.objects.filter(api_key__user=user).values_list("key_hash", flat=True)
    apikey_cache_forget(list(hashes))


def apikey_forget_plan(*, plan: Plan) -> None:
    """Drop cached identities of every account on a plan staff just edited (one query, one cache call)."""
    hashes = ApiKeySecret.objects.filter(api_key__user__plan=plan).values_list("key_hash", flat=True)
    apikey_cache_forget(list(hashes))


_last_marked: dict[str, float] = {}  # key id -> monotonic time this process last asked the shared cache


def apikey_mark_used(*, key_id, ip: str | None) -> None:
    """Record use at most once a minute per key.

    A process-local clock skips the shared cache on the hot path; the shared cache flag then makes
    one process of all of them write the row.
    """
    now = time.monotonic()
    if now - _last_marked.get(key_id, -LAST_USED_WRITE_INTERVAL) < LAST_USED_WRITE_INTERVAL:
        return
    _last_marked[key_id] = now
    if cache.add(f"apikey-used:{key_id}", 1, LAST_USED_WRITE_INTERVAL):
        ApiKey.objects.filter(id=key_id).update(last_used_at=timezone.now(), last_used_ip=ip)


# The contract's defaults; staff edit them in the admin afterwards and seeding never overwrites.
DEFAULT_PLANS = [
    {"slug": "free", "name": "Free", "requests_per_minute": 10, "parallel_tasks": 1, "monthly_credits": 0},
    {
        "slug": "lite",
        "name": "Lite",
        "requests_per_minute": 30,
        "parallel_tasks": 2,
        "monthly_credits": 600,
        "price_cents": 900,
    },
    {
        "slug": "pro",
        "name": "Pro",
        "requests_per_minute": 60,
        "parallel_tasks": 3,
        "monthly_credits": 2200,
        "price_cents": 2900,
    },
    {
        "slug": "pro-plus",
        "name": "Pro Plus",
        "requests_per_minute": 200,
        "parallel_tasks": 25,
        "monthly_credits": 8000,
        "price_cents": 9900,
    },
]


def plan_seed_defaults() -> None:
    for order, fields in enumerate(DEFAULT_PLANS):
        Plan.objects.get_or_create(slug=fields["slug"], defaults={**fields, "sort_order": order})


def user_set_plan(*, user: User, plan: Plan) -> User:
    if user.plan_id != plan.slug:
        User.objects.filter(pk=user.pk).update(plan=plan)
        user.plan = plan
        apikey_forget_user(user=user)
    return user


def user_deactivate(*, user: User) -> bool:
    """Stop the account: its sessions no longer sign in, its keys stop at once in every process, and its
    jobs stop (generation listens). False when it was inactive already."""
    if not User.objects.filter(pk=user.pk, is_active=True).update(is_active=False):
        return False
    user.is_active = False
    apikey_forget_user(user=user)
    # Once committed: a job that commits meanwhile then meets an owner its worker sees as inactive.
    transaction.on_commit(lambda: account_deactivated.send(sender=User, user=user))
    return True


def user_set_email(*, user: User, email: str) -> User:
    """An address staff set for the account: lower-cased, as sign-up stores it, and at once its verified,
    primary and only address (allauth signs in by these), so it is the login and the old one is not."""
    email = email.strip().lower()
    with transaction.atomic():
        was = EmailAddress.objects.filter(user=user, primary=True).first()
        User.objects.filter(pk=user.pk).update(email=email)
        user.email = email
        EmailAddress.objects.filter(user=user).exclude(email=email).delete()
        now, _ = EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        if was is None or was.email != email:  # as allauth reports a user's own change, to whoever listens
            email_changed.send(sender=User, request=None, user=user, from_email_address=was, to_email_address=now)
    return user


def _key_event_data(api_key: ApiKey) -> dict:
    return {
        "keyId": str(api_key.id),
        "name": api_key.name,
        "prefix": api_key.prefix,
        "lastFour": api_key.last_four,
        "expiresAt": iso_utc(api_key.expires_at),
    }


def apikey_send_expiry_reminders(*, within_days: int = 7) -> int:
    """E-mail each owner once about a live key that expires within the next week."""
    now = timezone.now()
    due = ApiKey.objects.filter(
        user__is_active=True,  # a deactivated account's keys are refused anyway, and it cannot log in to act
        revoked_at__isnull=True,
        expiry_reminder_sent_at__isnull=True,
        expires_at__gt=now,
        expires_at__lte=now + timedelta(days=within_days),
    ).select_related("user")
    sent = 0
    for api_key in due:
        # Claim first: two beat runs at once still send one e-mail.
        with transaction.atomic():  # the claim and the webhook event land together
            claimed = ApiKey.objects.filter(id=api_key.id, expiry_reminder_sent_at__isnull=True).update(
                expiry_reminder_sent_at=now
            )
            if claimed:
                account_event(user_id=api_key.user_id, event="key.expiring", data=_key_event_data(api_key))
        if claimed:
            _send_expiry_email(api_key)
            sent += 1
    return sent


def _send_expiry_email(api_key: ApiKey) -> None:
    context = {"api_key": api_key, "site_url": settings.SITE_URL}
    mail_user(
        to=api_key.user.email,
        subject=f"Your API key {api_key.masked} expires soon",
        template="emails/key_expiring.txt",
        context=context,
    )
