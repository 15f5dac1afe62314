"""A fresh benchmark database and Redis db for each run, and the SQL the benchmarks use on the side."""

import subprocess
from contextlib import contextmanager
from typing import Any

import psycopg
import redis

from bench.config import DATABASE_URL, DB_NAME, PG_ARGS, REDIS_URL, ROOT, VAR_DIR, VENV_BIN, bench_env


def _run(command: list[str]) -> None:
    subprocess.run(command, cwd=ROOT, env=bench_env(), check=True, timeout=300, stdout=subprocess.DEVNULL)


def reset() -> None:
    """Drop and recreate flixly_bench, empty Redis db 13, migrate and load the catalog."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _run(["dropdb", *PG_ARGS, "--if-exists", "--force", DB_NAME])
    _run(["createdb", *PG_ARGS, DB_NAME])
    redis_client().flushdb()
    _run([str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput"])
    _run([str(VENV_BIN / "python"), "manage.py", "sync_catalog"])


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, socket_timeout=5)


@contextmanager
def pg():
    """A plain autocommit connection to the benchmark database (no Django in between)."""
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        yield connection


def sql(query: str, params: Any = None) -> list[tuple]:
    with pg() as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def reset_rate_limits(client: redis.Redis, user_id: int | None = None) -> int:
    """Delete the limiter's per-minute counters (rl:user:<id>:<minute>); the limiter still runs in full."""
    keys = list(client.scan_iter(f"rl:user:{'*' if user_id is None else user_id}:*", count=1000))
    return client.delete(*keys) if keys else 0
