"""Closed-loop HTTP load with wrk (Debian package `wrk`): one connection and one account per wrk thread."""

import json
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.config import BASE_URL, VAR_DIR

SCRIPT = Path(__file__).with_name("wrk.lua")


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    socket_errors: int
    statuses: dict[str, int] = field(default_factory=dict)
    server_cpu_ms: float | None = None  # CPU of the gunicorn processes per request (robust to other load)
    db_cpu_ms: float | None = None  # CPU of the PostgreSQL processes per request (some is the janitor's)
    busy_percent: float | None = None  # how busy the machine's CPUs were during the load
    first_error: str = ""  # status and start of the body of the first non-2xx response, if any
    connections: list = field(default_factory=list)  # per gunicorn worker, sampled 1 s in (per round when merged)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith("2"))

    def as_dict(self) -> dict:
        return {**asdict(self), "non_2xx": self.non_2xx}


def merge(name: str, rounds: list[LoadResult]) -> LoadResult:
    """Several rounds of one load as one result: totals add up, p50 is the rounds' median, p99 their highest."""
    requests, seconds = sum(r.requests for r in rounds), sum(r.seconds for r in rounds)
    statuses: dict[str, int] = {}
    for r in rounds:
        for status, n in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    cpu = [r.server_cpu_ms * r.requests for r in rounds if r.server_cpu_ms is not None]
    db_cpu = [r.db_cpu_ms * r.requests for r in rounds if r.db_cpu_ms is not None]
    busy = [r.busy_percent * r.seconds for r in rounds if r.busy_percent is not None]
    return LoadResult(
        name=name,
        requests=requests,
        seconds=round(seconds, 2),
        rps=round(requests / seconds, 1),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=max(r.p99_ms for r in rounds),
        mean_ms=round(sum(r.mean_ms * r.requests for r in rounds) / max(1, requests), 2),
        max_ms=max(r.max_ms for r in rounds),
        socket_errors=sum(r.socket_errors for r in rounds),
        statuses=statuses,
        server_cpu_ms=round(sum(cpu) / max(1, requests), 3) if cpu else None,
        db_cpu_ms=round(sum(db_cpu) / max(1, requests), 3) if db_cpu else None,
        busy_percent=round(sum(busy) / max(1, seconds), 1) if busy else None,
        first_error=next((r.first_error for r in rounds if r.first_error), ""),
        connections=[r.connections for r in rounds],
    )


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench needs wrk: apt-get install -y wrk")


def _keys_file(name: str, keys: list[str]) -> str:
    if not keys:
        return ""
    path = VAR_DIR / f"keys-{name}.txt"
    path.write_text("\n".join(keys) + "\n")
    return str(path)


def _parse(name: str, output: str) -> LoadResult:
    line = next((x for x in output.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result for {name}:\n{output[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    return LoadResult(
        name=name,
        requests=raw["requests"],
        seconds=round(seconds, 2),
        rps=round(raw["requests"] / seconds, 1),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 2),
        max_ms=raw["max_us"] / 1000,
        socket_errors=raw["socket_errors"],
        statuses=raw["statuses"],
        first_error=raw["first_error"],
    )


@dataclass(frozen=True)
class Load:
    """What every connection sends; with idempotency=True each request carries a new Idempotency-Key."""

    name: str
    path: str
    method: str = "GET"
    body: str = ""
    keys: tuple[str, ...] = ()  # connection i sends keys[i % len(keys)]; empty: no Authorization header
    idempotency: bool = False


def wrk(load: Load, *, seconds: int, clients: int) -> LoadResult:
    """Run `clients` connections (one per wrk thread) for `seconds` against BASE_URL + load.path."""
    command = ["wrk", f"-t{clients}", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", str(SCRIPT)]
    prefix = f"{load.name}-{time.time_ns()}" if load.idempotency else ""  # unique across phases and runs
    keys_file = _keys_file(load.name, list(load.keys))
    command += [BASE_URL + load.path, "--", load.method, load.path, load.body, keys_file, prefix]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return _parse(load.name, done.stdout + done.stderr)
