"""Per-account request rate limits.

Algorithm: a fixed one-minute window aligned to the clock (key = account + minute number).
Each request increments the window's counter; a request whose count exceeds the plan's limit is
refused until the window ends. On Redis the increment and its expiry go in one MULTI/EXEC
pipeline: atomic, one round trip, shared by every web process. Without Redis the default cache
(in-process, locked) does the same for a single process.
"""

import functools
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache

from flixly_site.errors import RateLimited, ServiceUnavailable

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateWindow:
    limit: int
    remaining: int
    reset: int  # whole seconds until the window ends
    allowed: bool


@functools.cache
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _increment(key: str) -> int:
    if not settings.REDIS_URL:
        cache.add(key, 0, WINDOW_SECONDS + 1)
        return cache.incr(key)
    pipe = _redis_client(settings.REDIS_URL).pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, WINDOW_SECONDS + 1)
    try:
        count, _ = pipe.execute()
    except redis.RedisError:
        raise ServiceUnavailable("The rate limiter is unavailable; nothing was charged. Try again shortly.") from None
    return int(count)


def ratelimit_hit(*, bucket: str, limit: int, now: float | None = None) -> RateWindow:
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    reset = max(1, WINDOW_SECONDS - int(now % WINDOW_SECONDS))
    count = _increment(f"rl:{bucket}:{window}")
    return RateWindow(limit=limit, remaining=max(0, limit - count), reset=reset, allowed=count <= limit)


PARALLEL_RETRY_AFTER = 5  # seconds: a typical short job frees a slot by then


def parallel_tasks_check(*, plan_limit: int, active: int) -> None:
    """Refuse a submission that would exceed the plan's parallel tasks (queued + running)."""
    if active >= plan_limit:
        raise RateLimited(
            f"Your plan runs {plan_limit} task(s) at a time and {active} are queued or running. "
            "Retry when one finishes.",
            headers={"Retry-After": str(PARALLEL_RETRY_AFTER)},
        )
