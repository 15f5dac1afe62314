"""The store every web and worker process shares: Redis, when REDIS_URL is set.

Without Redis (the embedded development setup) callers fall back to Django's default cache, which
lives in one process: the one web process `make run` starts.
"""

import contextlib
import functools
import hashlib
import os
import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from django.conf import settings
from redis.exceptions import NoScriptError

IO_TIMEOUT_SECONDS = 2


class KernelTimeoutConnection(redis.Connection):
    """A TCP connection whose socket blocks, with its send and receive timeouts kept by the kernel
    (SO_SNDTIMEO, SO_RCVTIMEO). A Python socket with a timeout polls before every send and every read:
    twice the system calls, and a GIL hand-over each, on every command of every request."""

    def _connect(self) -> socket.socket:
        sock = super()._connect()
        seconds = int(IO_TIMEOUT_SECONDS)
        timeval = struct.pack("ll", seconds, int((IO_TIMEOUT_SECONDS - seconds) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        return sock

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        with _kernel_timeout_as_timeout("writing to"):
            super().send_packed_command(*args, **kwargs)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        with _kernel_timeout_as_timeout("reading from"):
            return super().read_response(*args, **kwargs)


@contextlib.contextmanager
def _kernel_timeout_as_timeout(doing: str) -> Iterator[None]:
    """redis-py reports a socket timeout it did not set itself as a lost connection (which redis_command
    retries); it is a timeout, as with a Python socket timeout."""
    try:
        yield
    except redis.ConnectionError as error:
        if isinstance(error.__context__, BlockingIOError):
            raise redis.TimeoutError(f"Timeout {doing} socket") from None
        raise


@functools.cache
def _client(url: str) -> redis.Redis:
    # One client and connection pool per process: Django's Redis cache builds a client on every call.
    if url.startswith("redis://"):
        return redis.Redis.from_url(
            url, connection_class=KernelTimeoutConnection, socket_timeout=None, socket_connect_timeout=2
        )
    return redis.Redis.from_url(url, socket_timeout=IO_TIMEOUT_SECONDS, socket_connect_timeout=2)


def redis_client() -> redis.Redis | None:
    return _client(settings.REDIS_URL) if settings.REDIS_URL else None


_own = threading.local()


def thread_connection(url: str) -> redis.Connection:
    """This thread's own connection to the Redis at `url` (a new one after a fork): a command sent on it
    skips the pool's lock and redis-py's retry layers, about a third of a command's client-side cost."""
    if getattr(_own, "pid", None) != os.getpid():
        _own.conns, _own.pid = {}, os.getpid()
    conn = _own.conns.get(url)
    if conn is None:
        pool = _client(url).connection_pool
        conn = _own.conns[url] = pool.connection_class(**pool.connection_kwargs)
    return conn


def redis_command(url: str, *command: Any) -> Any:
    """Run one command on this thread's connection; once more on a new connection if the server went
    away (a restart): a command then may land twice, so use it where that is harmless."""
    reply = redis_commands(url, command)[0]
    if isinstance(reply, redis.ResponseError):
        raise reply
    return reply


def redis_commands(url: str, *commands: tuple) -> list[Any]:
    """Run the commands in one round trip (a pipeline, not a transaction), retried as redis_command is.
    Each reply comes back in order; a command the server refused has its ResponseError in its place."""
    try:
        return _round_trip_many(url, commands)
    except redis.ConnectionError:
        return _round_trip_many(url, commands)


def _round_trip_many(url: str, commands: Sequence[tuple]) -> list[Any]:
    conn = thread_connection(url)
    try:
        conn.send_packed_command(conn.pack_commands(commands))
        return [_reply(conn) for _ in commands]
    except BaseException:
        # Interrupted between sending and reading (a timeout, a worker's shutdown): a reply may still be
        # on its way, and the next command on this connection would read it as its own.
        conn.disconnect()
        raise


def _reply(conn: redis.Connection) -> Any:
    try:
        return conn.read_response()
    except redis.ResponseError as error:
        return error  # the server answered: the connection is in step


class LuaScript:
    """A Lua script run atomically on Redis with EVALSHA; sent whole (EVAL) when the server lacks it."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)

    def __call__(self, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        # Retried once on a new connection like any redis_command: a count may then land twice, which a
        # restarted Redis, having lost its counters, more than makes up for.
        try:
            return redis_command(settings.REDIS_URL, "EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return redis_command(settings.REDIS_URL, "EVAL", self.source, len(keys), *keys, *args)
