"""`make bench`: Flixly's benchmarks on gunicorn + PostgreSQL + Redis (loopback only). See bench/README.md.

Prints a summary table and writes every number to bench/results/latest.json.
"""

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import database, report
from bench.config import GUNICORN_THREADS, GUNICORN_WORKERS, RESULTS_DIR, bench_env
from bench.load import require_wrk
from bench.procs import busy_percent, celery_command, gunicorn_command, start_gunicorn, stop

BENCHES = ("auth", "submit", "worker", "scale")
WORKER_CONFIGS = "threads:8,prefork:2,prefork:4"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", action="store_true", help="also measure at 1,000,000 jobs (adds 0.5-2 minutes)")
    parser.add_argument("--seconds", type=int, default=12, help="length of each measured load phase (default 12)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections, one account each")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs the worker benchmark drains (default 2000)")
    parser.add_argument("--worker-configs", default=WORKER_CONFIGS, help=f"pool:concurrency,... ({WORKER_CONFIGS})")
    parser.add_argument("--workers", type=int, default=GUNICORN_WORKERS, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=GUNICORN_THREADS, help="gunicorn threads per worker")
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}")
    return parser.parse_args()


def worker_configs(args: argparse.Namespace) -> list[tuple[str, int]]:
    return [(pool, int(n)) for pool, n in (item.split(":") for item in args.worker_configs.split(","))]


def prepare(clients: int) -> dict:
    """A fresh database, then Django in this process to create the accounts and the no-op model."""
    database.reset()
    os.environ.update(bench_env())
    os.environ["FLIXLY_LOG_LEVEL"] = "WARNING"  # this process only; the servers keep INFO
    import django

    django.setup()
    from bench import seed

    seed.create_noop_model()
    return {"load": seed.create_accounts("load", clients), "other": seed.create_accounts("other", 2)}


def http_benches(args: argparse.Namespace, wanted: set[str], keys: list[str]) -> dict:
    from bench.http_benches import auth_overhead, submit_path

    results = {}
    server = start_gunicorn(args.workers, args.threads)
    try:
        if "auth" in wanted:
            results["auth"] = auth_overhead(keys, seconds=args.seconds, clients=args.clients, server_pid=server.pid)
        if "submit" in wanted:
            results["submit"] = submit_path(keys, seconds=args.seconds, clients=args.clients, server_pid=server.pid)
    finally:
        stop(server)
    return results


def other_benches(args: argparse.Namespace, wanted: set[str], accounts: dict) -> dict:
    from bench.scale_bench import scale
    from bench.worker_bench import worker_throughput

    worker_account, scale_account = accounts["other"]
    results = {}
    if "worker" in wanted:
        results["worker"] = worker_throughput(worker_account.user_id, args.jobs, worker_configs(args))
    if "scale" in wanted:
        large = 1_000_000 if args.scale else None
        server = (args.workers, args.threads)
        results["scale"] = scale(scale_account.user_id, scale_account.key, small=10_000, large=large, server=server)
    return results


def setup_notes(args: argparse.Namespace) -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "gunicorn": " ".join(gunicorn_command(args.workers, args.threads)[1:]),
        "celery": [" ".join(celery_command(pool, n)[1:]) for pool, n in worker_configs(args)],
        "seconds_per_phase": args.seconds,
        "clients": args.clients,
    }


def main() -> None:
    args = parse_args()
    wanted = set(args.only.split(","))
    require_wrk()
    started = time.monotonic()
    accounts = prepare(args.clients)
    results = {"setup": setup_notes(args), "idle_cpu_busy_percent": {"start": busy_percent()}}
    if wanted & {"auth", "submit"}:
        results |= http_benches(args, wanted, [account.key for account in accounts["load"]])
    results["idle_cpu_busy_percent"]["middle"] = busy_percent()
    results |= other_benches(args, wanted, accounts)
    results["idle_cpu_busy_percent"]["end"] = busy_percent()
    results["total_seconds"] = round(time.monotonic() - started, 1)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(report.table(results))
    print(f"\n{results['total_seconds']} s; all numbers in {RESULTS_DIR / 'latest.json'}")


if __name__ == "__main__":
    main()
