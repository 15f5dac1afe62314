"""Per-account request rate limits.

Algorithm: a fixed one-minute window aligned to the clock (key = account + minute number).
Each request increments the window's counter; a request whose count exceeds the plan's limit is
refused until the window ends. On Redis one Lua script increments the counter, sets its expiry on
the window's first request and reads the few keys the caller asks for (the API key's version, the
cached balance): atomic, one round trip, shared by every web process. Without Redis the default
cache (in-process, locked) does the same for a single process.
"""

import contextlib
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache

from accounts.models import User
from flixly_site.errors import RateLimited, ServiceUnavailable
from flixly_site.shared import LuaScript, redis_client, redis_command

WINDOW_SECONDS = 60

_COUNT_AND_READ = LuaScript("""
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local reply = {count}
for i = 2, #KEYS do reply[i] = redis.call('GET', KEYS[i]) end
return reply
""")


@dataclass(frozen=True)
class RateWindow:
    count: int  # requests in this window so far, this one included
    limit: int
    reset: int  # whole seconds until the window ends
    reads: dict[str, Any] = field(default_factory=dict)  # the values of the keys read with the count

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit


def _count_and_read(key: str, reads: Sequence[str]) -> tuple[int, list[Any]]:
    if redis_client() is None:
        cache.add(key, 0, WINDOW_SECONDS + 1)
        values = cache.get_many(reads)
        return cache.incr(key), [values.get(k) for k in reads]
    try:
        count, *values = _COUNT_AND_READ(keys=[key, *reads], args=[WINDOW_SECONDS + 1])
    except redis.RedisError:
        raise ServiceUnavailable("The rate limiter is unavailable; nothing was charged. Try again shortly.") from None
    return int(count), values


def account_bucket(user_id: int) -> str:
    """Every key and the session of an account count against one limit."""
    return f"user:{user_id}"


def _window(bucket: str, now: float | None) -> tuple[str, int]:
    """The counter key of the bucket's current window, and the whole seconds until that window ends."""
    now = time.time() if now is None else now
    return f"rl:{bucket}:{int(now // WINDOW_SECONDS)}", max(1, WINDOW_SECONDS - int(now % WINDOW_SECONDS))


def ratelimit_hit(*, bucket: str, limit: int, now: float | None = None, reads: Sequence[str] = ()) -> RateWindow:
    """Count one request in the bucket's current window; also read `reads` from the shared store."""
    key, reset = _window(bucket, now)
    count, values = _count_and_read(key, reads)
    return RateWindow(count=count, limit=limit, reset=reset, reads=dict(zip(reads, values, strict=True)))


def ratelimit_peek(*, bucket: str, limit: int, now: float | None = None) -> RateWindow:
    """The bucket's current window without counting a request: for the headers of a response refused
    before its request was counted (a session's failed CSRF check)."""
    key, reset = _window(bucket, now)
    client = redis_client()
    try:
        count = cache.get(key) if client is None else client.get(key)
    except redis.RedisError:
        raise ServiceUnavailable("The rate limiter is unavailable. Try again shortly.") from None
    return RateWindow(count=int(count or 0), limit=limit, reset=reset)


PARALLEL_RETRY_AFTER = 5  # seconds: a typical short job frees a slot by then


def parallel_tasks_check(*, plan_limit: int, active: int) -> None:
    """Refuse a submission that would exceed the plan's parallel tasks (queued + running)."""
    if active >= plan_limit:
        jobs = "1 job" if plan_limit == 1 else f"{plan_limit} jobs"
        busy, which = ("1 is", "it") if active == 1 else (f"{active} are", "one of them")
        raise RateLimited(
            f"Your plan runs {jobs} at a time, and {busy} queued or running. Try again when {which} finishes.",
            headers={"Retry-After": str(PARALLEL_RETRY_AFTER)},
        )


# Requests that hold a web thread until their job ends (Prefer: wait, the OpenAI surface) hold one of the
# account's wait slots meanwhile: as many as its plan's parallel tasks. Replays of one Idempotency-Key pass
# the parallel-task check, and would otherwise tie up every thread of the server.
WAIT_SLOT_SECONDS = 120  # past the longest wait (60 s): a slot whose holder died frees itself then

_TAKE_SLOT = LuaScript("""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
""")
_local_slots: dict[str, dict[str, float]] = {}  # without Redis: this process's slots, as the default cache
_local_lock = threading.Lock()


@dataclass
class WaitSlot:
    key: str
    token: str
    taken: bool

    def __enter__(self) -> "WaitSlot":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        if not self.taken:
            return
        self.taken = False
        if redis_client() is None:
            with _local_lock:
                _local_slots.get(self.key, {}).pop(self.token, None)
            return
        with contextlib.suppress(redis.RedisError):  # else it frees itself after WAIT_SLOT_SECONDS
            redis_command(settings.REDIS_URL, "ZREM", self.key, self.token)


def account_wait_slot(user: User) -> WaitSlot:
    """One of the account's wait slots: as many as its plan runs jobs at a time."""
    return wait_slot(bucket=account_bucket(user.pk), limit=user.plan.parallel_tasks)


def wait_slot(*, bucket: str, limit: int, now: float | None = None) -> WaitSlot:
    """One of the bucket's `limit` wait slots if one is free (`taken`); release() it when the wait ends."""
    key, token, now = f"waits:{bucket}", uuid.uuid4().hex, time.time() if now is None else now
    if redis_client() is None:
        return WaitSlot(key, token, _take_local(key, token, now, limit))
    try:
        taken = _TAKE_SLOT(keys=[key], args=[now, token, WAIT_SLOT_SECONDS, limit])
    except redis.RedisError:
        taken = 0  # the request goes on without waiting, or is refused where it must wait
    return WaitSlot(key, token, bool(taken))


def _take_local(key: str, token: str, now: float, limit: int) -> bool:
    with _local_lock:
        held = {t: at for t, at in _local_slots.get(key, {}).items() if at > now - WAIT_SLOT_SECONDS}
        if len(held) >= limit:
            _local_slots[key] = held
            return False
        _local_slots[key] = {**held, token: now}
        return True
