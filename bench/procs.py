"""Start and stop the processes under test (gunicorn, a Celery worker); read CPU and memory from /proc."""

import collections
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from bench.config import BASE_URL, HOST, PORT, ROOT, VAR_DIR, VENV_BIN, bench_env

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def gunicorn_command(workers: int, threads: int) -> list[str]:
    return [
        str(VENV_BIN / "gunicorn"),
        "flixly_site.wsgi",
        "--bind",
        f"{HOST}:{PORT}",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--keep-alive",
        "5",
        "--no-control-socket",
    ]


def celery_command(pool: str, concurrency: int) -> list[str]:
    return [str(VENV_BIN / "celery"), "-A", "flixly_site", "worker", "--pool", pool, "--concurrency", str(concurrency)]


def start(command: list[str], log_name: str) -> subprocess.Popen:
    """Start a process in its own session (so it and its children stop together); output goes to var/bench."""
    with (VAR_DIR / log_name).open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            command, cwd=ROOT, env=bench_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # the group this module created: the process and its workers
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def start_gunicorn(workers: int, threads: int) -> subprocess.Popen:
    process = start(gunicorn_command(workers, threads), "gunicorn.log")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited at start-up; see var/bench/gunicorn.log")
        try:
            if httpx.get(f"{BASE_URL}/bench/bare", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(process)
    raise RuntimeError("gunicorn did not answer within 30 s; see var/bench/gunicorn.log")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def memory_kb(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status in kB: VmRSS (now) or VmHWM (peak since the process started)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_percent(seconds: float = 1.0) -> float:
    """How busy all CPUs are over `seconds` (measured while the benchmarks are idle: other people's load)."""
    busy_before, total_before = _cpu_times()
    time.sleep(seconds)
    busy_after, total_after = _cpu_times()
    return round(100 * (busy_after - busy_before) / max(1, total_after - total_before), 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (gunicorn or Celery workers), in seconds."""
    total = 0
    for each in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def named_cpu_seconds(name: str) -> float:
    """User + system CPU of every process whose command is `name` (the PostgreSQL server's processes),
    with that of those that exited (their parent's cutime and cstime: the server's connections and
    autovacuum workers come and go)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm, stat = (entry / "comm").read_text().strip(), (entry / "stat").read_text()
            except OSError:
                continue
            if comm == name:
                fields = stat.rsplit(")", 1)[1].split()
                total += sum(int(ticks) for ticks in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    return _cpu_times()


def connections_per_process() -> list[int]:
    """The open client connections to the server port, counted per process holding them, most first: wrk's
    keep-alive connections stay with the gunicorn worker that accepted them, however unevenly they fell."""
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{PORT} )"], capture_output=True, text=True, check=False
    ).stdout
    return sorted(collections.Counter(re.findall(r"pid=(\d+)", listing)).values(), reverse=True)
