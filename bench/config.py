"""Where the benchmarks run: a dedicated PostgreSQL database, Redis db 13, var/bench, port 8765 on loopback."""

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = ROOT / "var" / "bench"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
VENV_BIN = ROOT / ".venv" / "bin"

DB_NAME = "flixly_bench"
PG_ARGS = ["-h", "127.0.0.1", "-U", "postgres"]
DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/13"
HOST = "127.0.0.1"  # the only address any benchmark sends traffic to
PORT = 8765
BASE_URL = f"http://{HOST}:{PORT}"
MINIMAL_QUEUE_KEY = "bench:minimal-queue"  # the Redis list /bench/minimal-submit pushes to (not the Celery queue)

# gunicorn for every HTTP benchmark: 2 cores -> 2 processes (one per core), 4 threads each to overlap I/O waits.
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4


def bench_env() -> dict[str, str]:
    """The environment of every process the benchmarks start (and of bench/run.py itself)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flixly_site.settings",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-secret-" + "x" * 40,
        "FLIXLY_KEY_PEPPER": "bench-pepper-not-secret",
        "FLIXLY_VAR_DIR": str(VAR_DIR),
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "false",
        "FLIXLY_LOCAL_FALLBACK": "true",
        "FLIXLY_BENCH_ENDPOINTS": "true",
        "FLIXLY_EXTRA_PROVIDERS": json.dumps({"noop": "bench.noop.NoopProvider"}),
        "FLIXLY_LOG_LEVEL": "INFO",  # the servers log as in production (one line per API request)
        "PYTHONPATH": str(ROOT),
    }
