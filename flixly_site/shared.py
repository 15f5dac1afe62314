"""The store every web and worker process shares: Redis, when REDIS_URL is set.

Without Redis (the embedded development setup) callers fall back to Django's default cache, which
lives in one process: the one web process `make run` starts.
"""

import functools
import hashlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import redis
from django.conf import settings
from redis.exceptions import NoScriptError


@functools.cache
def _client(url: str) -> redis.Redis:
    # One client and connection pool per process: Django's Redis cache builds a client on every call.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def redis_client() -> redis.Redis | None:
    return _client(settings.REDIS_URL) if settings.REDIS_URL else None


_own = threading.local()


def _thread_connection() -> redis.Connection:
    # Each thread keeps one connection of its own (a new one after a fork): a script call then skips
    # the pool's lock and redis-py's retry layers, about a third of its client-side cost.
    conn = getattr(_own, "conn", None)
    if conn is None or _own.pid != os.getpid() or _own.url != settings.REDIS_URL:
        pool = _client(settings.REDIS_URL).connection_pool
        conn = pool.connection_class(**pool.connection_kwargs)
        _own.conn, _own.pid, _own.url = conn, os.getpid(), settings.REDIS_URL
    return conn


class LuaScript:
    """A Lua script run atomically on Redis with EVALSHA; sent whole (EVAL) when the server lacks it."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)

    def __call__(self, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        try:
            return self._run(keys, args)
        except redis.ConnectionError:
            # Once more, on a new connection: the server went away (a restart). A count may then land
            # twice, which a restarted Redis, having lost its counters, more than makes up for.
            return self._run(keys, args)

    def _run(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        conn = _thread_connection()
        conn.send_command("EVALSHA", self.sha, len(keys), *keys, *args)
        try:
            return conn.read_response()
        except NoScriptError:
            conn.send_command("EVAL", self.source, len(keys), *keys, *args)
            return conn.read_response()
