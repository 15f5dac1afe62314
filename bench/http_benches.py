"""Benchmarks 1 and 2: auth overhead on a public GET, and the submit path against its floor."""

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx

from bench.config import BASE_URL, MINIMAL_QUEUE_KEY
from bench.database import pg, redis_client, reset_rate_limits, sql
from bench.load import Load, LoadResult, merge, wrk
from bench.procs import connections_per_process, cpu_seconds, machine_cpu, named_cpu_seconds

WARMUP_SECONDS = 3
ROUNDS = 3  # measured rounds per load, interleaved with the other loads
JANITOR_NICENESS = -10
JANITOR_INTERVAL = 0.1  # often enough that bursts of fast submits never reach a plan's 25 parallel tasks
MODEL_PATH = "/api/v1/models/flux-dev"
SUBMIT_BODY = json.dumps({"model": "flux-dev", "prompt": "a lighthouse at dawn", "type": "TEXT_TO_IMAGE"})
# SKIP LOCKED: the janitor's pass and a round's sweep may run at once; waiting on each other's rows, in
# no fixed order, they could deadlock (seen once, at about 740 submits/s). A row left is the next pass's.
COMPLETE_QUEUED = (
    "UPDATE generation_job SET status = 'completed', completed_at = now() WHERE id IN "
    "(SELECT id FROM generation_job WHERE status = 'queued' FOR UPDATE SKIP LOCKED)"
)


def sweep(complete_jobs: bool = True) -> None:
    """Once, now: reset the per-minute counters and (no worker runs here) mark queued jobs completed."""
    reset_rate_limits(redis_client())
    if complete_jobs:
        sql(COMPLETE_QUEUED)


def _janitor_loop(stop: threading.Event, max_seconds: float, complete_jobs: bool) -> None:
    # Ahead of the load in the CPU queue: starved for a second under the load, it once let an account
    # reach its 25 parallel tasks (a few 429s in 9,400 submits). Needs root; otherwise as it is.
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JANITOR_NICENESS)
    client = redis_client()
    deadline = time.monotonic() + max_seconds
    with pg() as connection:
        while not stop.wait(JANITOR_INTERVAL) and time.monotonic() < deadline:
            reset_rate_limits(client)
            if complete_jobs:
                connection.execute(COMPLETE_QUEUED)


@contextmanager
def janitor(max_seconds: float, *, complete_jobs: bool) -> Iterator[None]:
    """Every 0.1 s: reset the per-minute counters, and mark queued jobs completed (no worker runs here)."""
    stop = threading.Event()
    thread = threading.Thread(target=_janitor_loop, args=(stop, max_seconds, complete_jobs), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def key_is_authenticated(key: str) -> bool:
    """Whether a keyed GET of the model really authenticates (it then carries the rate-limit headers)."""
    response = httpx.get(BASE_URL + MODEL_PATH, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return response.status_code == 200 and "X-RateLimit-Limit" in response.headers


def measure(load: Load, *, seconds: int, clients: int, server_pid: int) -> LoadResult:
    """wrk for `seconds`, plus the CPU the gunicorn processes spent per request meanwhile and how wrk's
    connections fell across the workers (an uneven split puts the busier worker's clients in the p99)."""
    cpu_before, db_before, (busy_before, total_before) = (
        cpu_seconds(server_pid),
        named_cpu_seconds("postgres"),
        machine_cpu(),
    )
    sampled: list[int] = []
    sampler = threading.Timer(1.0, lambda: sampled.extend(connections_per_process()))
    sampler.start()
    result = wrk(load, seconds=seconds, clients=clients)
    sampler.join()
    cpu, db_cpu = cpu_seconds(server_pid) - cpu_before, named_cpu_seconds("postgres") - db_before
    busy_after, total_after = machine_cpu()
    per_request = 1000 / max(1, result.requests)
    return replace(
        result,
        server_cpu_ms=round(cpu * per_request, 3),
        db_cpu_ms=round(db_cpu * per_request, 3),
        busy_percent=round(100 * (busy_after - busy_before) / max(1, total_after - total_before), 1),
        connections=sampled,
    )


def interleaved(loads: list[Load], *, seconds: int, clients: int, server_pid: int) -> dict[str, LoadResult]:
    """Each load warmed up once, then ROUNDS rounds of A, B, C... (seconds / ROUNDS each), merged per load:
    a disturbance from outside then hits every load alike instead of one of them."""
    for load in loads:
        sweep()
        wrk(load, seconds=WARMUP_SECONDS, clients=clients)
    rounds: dict[str, list[LoadResult]] = {load.name: [] for load in loads}
    for _ in range(ROUNDS):
        for load in loads:
            sweep()  # so no load starts with the previous one's queued jobs against its parallel-task limit
            rounds[load.name].append(
                measure(load, seconds=max(1, seconds // ROUNDS), clients=clients, server_pid=server_pid)
            )
    return {name: merge(name, results) for name, results in rounds.items()}


def auth_overhead(keys: list[str], *, seconds: int, clients: int, server_pid: int) -> dict:
    """GET /api/v1/models/flux-dev with a Bearer key (one account per connection) vs with no Authorization."""
    loads = [Load("anonymous", MODEL_PATH), Load("with_key", MODEL_PATH, keys=tuple(keys))]
    with janitor(3 * seconds + 60, complete_jobs=False):
        results = interleaved(loads, seconds=seconds, clients=clients, server_pid=server_pid)
    anonymous, keyed = results["anonymous"], results["with_key"]
    return {
        "clients": clients,
        "key_authenticated": key_is_authenticated(keys[0]),
        "anonymous": anonymous.as_dict(),
        "with_key": keyed.as_dict(),
        "ratio": round(keyed.rps / anonymous.rps, 3),
    }


def submit_loads(keys: list[str]) -> list[Load]:
    keyed = tuple(keys)
    return [
        Load("bare", "/bench/bare"),
        Load("minimal_submit", "/bench/minimal-submit", "POST", SUBMIT_BODY, keyed),
        Load("generate", "/api/v1/generate", "POST", SUBMIT_BODY, keyed),
        Load("generate_idempotency_key", "/api/v1/generate", "POST", SUBMIT_BODY, keyed, idempotency=True),
    ]


def submit_path(keys: list[str], *, seconds: int, clients: int, server_pid: int) -> dict:
    """(a) bare DRF GET, (b) the minimal submit, the full POST /api/v1/generate (without and with an
    Idempotency-Key), interleaved on one server."""
    loads = submit_loads(keys)
    with janitor(len(loads) * (seconds + WARMUP_SECONDS + 30), complete_jobs=True):
        measured = interleaved(loads, seconds=seconds, clients=clients, server_pid=server_pid)
    redis_client().delete("celery", MINIMAL_QUEUE_KEY)  # the messages nobody consumed (the janitor completed the jobs)
    results = {name: result.as_dict() for name, result in measured.items()}
    minimal = results["minimal_submit"]["rps"]
    for name in ("generate", "generate_idempotency_key"):
        results[f"{name}_over_minimal"] = round(results[name]["rps"] / minimal, 3)
    return {"clients": clients, **results, "minimal_over_bare": round(minimal / results["bare"]["rps"], 3)}
