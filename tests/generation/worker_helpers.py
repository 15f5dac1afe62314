"""Real `celery worker` processes for end-to-end tests: the database they share, start, ready, kill, stop, logs.

A worker is a separate process, so it must see the rows the test commits. pytest-django gives each pass a test
database, and the worker is pointed at exactly that database through DATABASE_URL (built from the live
connection's settings, OPTIONS included, so SQLite keeps WAL, IMMEDIATE transactions and its lock timeout):

- PostgreSQL: the test database `test_<name>` is a normal server database; its URL is all the worker needs.
- SQLite: Django makes the test database of a file database an in-memory one
  (`file:memorydb_default?mode=memory&cache=shared`), which no other process can open. `shared_sqlite_file`
  copies it (already migrated and seeded) into a file with SQLite's backup API and points the test process's
  connection at that file for the duration; a second handle keeps the in-memory database alive so the
  connection can be pointed back at it afterwards and the rest of the session continues unchanged.

The broker is the configured one. The filesystem broker's folders live under FLIXLY_VAR_DIR, which every test
session of this checkout shares (var/test): a worker of another session running at the same time would take
this session's messages (it happened while these tests were written). `configured_broker` therefore moves the
queue folders of the test process to a private FLIXLY_VAR_DIR, and the worker gets that FLIXLY_VAR_DIR;
everything else in it is pinned to the test process's values (DJANGO_SECRET_KEY, FLIXLY_KEY_PEPPER,
FLIXLY_MEDIA_ROOT), so the files the worker writes are the ones the test client downloads. Redis needs no such
step: the PostgreSQL pass cannot run twice at once anyway (one `test_<name>` database).
"""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from kombu import pools as kombu_pools

from flixly_site.celery import app
from generation.queue import broker_forget

CELERY = Path(sys.executable).with_name("celery")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1, describe: Callable[[], str]):
    """Poll `predicate` until it returns something truthy; fail with `describe()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s: {describe()}")
        time.sleep(interval)


# --- the database the worker shares -------------------------------------------------------------------------


def database_url() -> str:
    """DATABASE_URL (dj-database-url syntax) for the database the test process is connected to right now."""
    conf = connection.settings_dict
    options = urlencode({k: v for k, v in (conf.get("OPTIONS") or {}).items() if isinstance(v, str | int | float)})
    query = f"?{options}" if options else ""
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            raise RuntimeError("another process cannot open an in-memory SQLite database; use shared_sqlite_file")
        return f"sqlite:///{Path(conf['NAME']).resolve()}{query}"
    if connection.vendor == "postgresql":
        auth = quote(conf.get("USER") or "", safe="")
        if conf.get("PASSWORD"):
            auth += ":" + quote(conf["PASSWORD"], safe="")
        host = conf.get("HOST") or "localhost"
        port = f":{conf['PORT']}" if conf.get("PORT") else ""
        return f"postgresql://{auth}{'@' if auth else ''}{host}{port}/{quote(conf['NAME'], safe='')}{query}"
    raise RuntimeError(f"no worker database URL for {connection.vendor}")


@contextmanager
def shared_sqlite_file(folder: Path) -> Iterator[None]:
    """Move an in-memory SQLite test database into a file other processes can open; a no-op for any other."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    memory_name = connection.settings_dict["NAME"]
    keeper = sqlite3.connect(memory_name, uri=True)  # the shared in-memory database lives while a handle is open
    path = folder / "worker-e2e.sqlite3"
    with sqlite3.connect(path) as copy:
        keeper.backup(copy)
    copy.close()
    connection.settings_dict["NAME"] = str(path)
    connection.close()  # the name is a file now, so this really closes the in-memory handle; next query opens the file
    try:
        with _closed_only_by_its_own_thread(connections[DEFAULT_DB_ALIAS]):
            yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = memory_name
        connection.ensure_connection()  # back on the in-memory database before the keeper lets go of it
        keeper.close()


@contextmanager
def _closed_only_by_its_own_thread(shared: BaseDatabaseWrapper) -> Iterator[None]:
    """pytest-django's live server (session-wide) shares the in-memory database's connection with its request
    threads, and each closes it as its request ends, which Django makes a no-op for an in-memory database only.
    On the file it would really close, under a query of this thread's: a segfault. So, as in memory, only the
    thread that opened it closes it."""
    owner, close = threading.get_ident(), shared.close

    def close_if_owner() -> None:
        if threading.get_ident() == owner:
            close()

    shared.close = close_if_owner
    try:
        yield
    finally:
        del shared.close


_MISSING = object()


@contextmanager
def celery_conf(**overrides) -> Iterator[None]:
    """Override Celery settings for a while, then put back exactly what was there before.

    The app's conf reads Django settings live (config_from_object), so restoring by assignment would pin whatever
    it read at that moment for the rest of the session: the previous state of its `changes` layer is restored
    instead. The app keeps connection and producer pools keyed by URL and transport options: both are reset.
    """
    app.conf.broker_url  # noqa: B018 (the first read finalizes the lazy configuration)
    changes = app.conf.changes
    saved = {name: changes.get(name, _MISSING) for name in overrides}
    pools = app._pool, app.amqp._producer_pool
    # kombu also keeps process-wide pools per broker: the ones made for the override go with it, or a
    # later test on the same URL would be handed a pool closed below ("Acquire on closed pool").
    shared_before = [(group, set(group.keys())) for group in (kombu_pools.connections, kombu_pools.producers)]
    app.conf.update(overrides)
    app._pool = app.amqp._producer_pool = None
    broker_forget()
    try:
        yield
    finally:
        if app._pool is not None:
            app._pool.force_close_all()
        for group, keys in shared_before:
            for key in set(group.keys()) - keys:
                group.pop(key).force_close_all()
        for name, value in saved.items():
            if value is _MISSING:
                changes.pop(name, None)
            else:
                changes[name] = value
        app._pool, app.amqp._producer_pool = pools
        broker_forget()


def private_broker_options(var_dir: Path) -> dict:
    """The product's CELERY_BROKER_TRANSPORT_OPTIONS with their folders moved from VAR_DIR to var_dir."""
    shared = Path(settings.VAR_DIR).resolve()
    options = {}
    for name, value in settings.CELERY_BROKER_TRANSPORT_OPTIONS.items():
        if isinstance(value, str) and Path(value).resolve().is_relative_to(shared):
            value = str(var_dir / Path(value).resolve().relative_to(shared))
            Path(value).mkdir(parents=True, exist_ok=True)
        options[name] = value
    return options


@contextmanager
def configured_broker(var_dir: Path) -> Iterator[None]:
    """The broker of the settings (whatever an earlier test left in the app's conf); filesystem folders in var_dir.

    A worker started with FLIXLY_VAR_DIR=var_dir reads the same folders.
    """
    overrides: dict = {"broker_url": settings.CELERY_BROKER_URL}
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        overrides["broker_transport_options"] = private_broker_options(var_dir)
    with celery_conf(**overrides):
        yield


def worker_environment(var_dir: Path) -> dict[str, str]:
    """The test process's environment, on the test database, with the private FLIXLY_VAR_DIR of the broker."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "FLIXLY_VAR_DIR": str(var_dir),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "FLIXLY_KEY_PEPPER": settings.FLIXLY_KEY_PEPPER,
        "FLIXLY_MEDIA_ROOT": str(Path(settings.MEDIA_ROOT).resolve()),
        "PYTHONUNBUFFERED": "1",
    }


# --- worker processes ---------------------------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path
    hostname: str
    log_file: object = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return f"--- worker {self.hostname} log tail ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> "Worker":
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode} before it was ready\n{self.tail()}")
            return f"{self.hostname} ready." in self.log()

        wait_until(ready, timeout=timeout, describe=self.tail)
        return self

    def lines_with(self, *parts: str) -> list[str]:
        return [line for line in self.log().splitlines() if all(part in line for part in parts)]

    def kill(self) -> int:
        """SIGKILL the worker's main process, as an OOM killer or a lost machine would; returns its exit code."""
        os.kill(self.pid, signal.SIGKILL)
        return self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGKILL its whole process group (pool children, ffmpeg) at once.

        A warm shutdown would add 2-3 s per worker (the filesystem transport's sync loop drains with a 2 s timeout)
        and buys nothing here: the test has made its assertions, and a killed worker is what these tests are about.
        """
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # its own session: the group id is the worker's pid
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT)
        self.log_file.close()


def procfile_pool(process: str) -> dict:
    """The --pool and --concurrency the Procfile starts `process` with (a variable's default where it names one)."""
    line = next(line for line in (settings.BASE_DIR / "Procfile").read_text().splitlines() if line.startswith(process))
    words = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", line).split()

    def flag(name: str, default: str) -> str:
        return words[words.index(name) + 1] if name in words else default

    return {"pool": flag("--pool", "prefork"), "concurrency": int(flag("--concurrency", "2"))}


def start_worker(
    *,
    log_dir: Path,
    env: dict[str, str],
    pool: str = "solo",
    concurrency: int = 1,
    queue: str = "celery",
    hostname: str | None = None,
) -> Worker:
    hostname = hostname or f"e2e-{uuid.uuid4().hex[:10]}@localhost"
    log_path = log_dir / f"{hostname.split('@')[0]}-{uuid.uuid4().hex[:6]}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 (closed by Worker.stop)
    command = [
        str(CELERY),
        "-A",
        "flixly_site",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-Q",
        queue,
        "--loglevel",
        "INFO",
        "-n",
        hostname,
    ]
    process = subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so teardown can reach ffmpeg and pool children
    )
    return Worker(process=process, log_path=log_path, hostname=hostname, log_file=log_file)


class WorkerPool:
    """The workers one test started: all of them share the test database and the broker, and all are stopped."""

    def __init__(self, *, log_dir: Path, var_dir: Path):
        self.log_dir, self.var_dir = log_dir, var_dir
        self.started: list[Worker] = []

    def start(
        self,
        *,
        pool: str = "solo",
        concurrency: int = 1,
        queue: str = "celery",
        env: dict[str, str] | None = None,
        hostname: str | None = None,
    ) -> Worker:
        """A worker of `queue` (the jobs' by default, as the Procfile's `worker`), with `env` added; a new node
        name unless `hostname` is given (a restart of the same worker)."""
        env = {**worker_environment(self.var_dir), **(env or {})}
        worker = start_worker(
            log_dir=self.log_dir, env=env, pool=pool, concurrency=concurrency, queue=queue, hostname=hostname
        )
        self.started.append(worker)
        return worker.wait_ready()

    def tails(self) -> str:
        return "\n".join(worker.tail() for worker in self.started) or "(no worker started)"

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
