"""Benchmark 4: GET /api/v1/jobs latency and the CSV export at 10k jobs and (with --scale) at 1M jobs."""

import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.config import BASE_URL
from bench.database import redis_client, reset_rate_limits, sql
from bench.procs import children, memory_kb, start_gunicorn, stop

SAMPLES = 50
INSERT_CHUNK = 100_000
EXPORT_DAYS = 80
INSERT_COMPLETED = """
INSERT INTO generation_job (id, user_id, api_key_id, is_test, model_id, type, params, status, progress,
    cancel_requested, route, credits_charged, credits_refunded, input_file, outputs, text, usage, metadata, error,
    error_detail, idempotency_key, request_hash, attempts, created_at, enqueued_at, started_at, deadline_at,
    completed_at)
SELECT gen_random_uuid(), %s, NULL, false, 'flux-dev', 'TEXT_TO_IMAGE', '{}', 'completed', 100, false, 'local', 3, 0,
    '', '[]', '', '{}', '{}', '', '', NULL, '', 1, t, t, t + interval '1 second', NULL, t + interval '4 seconds'
FROM (SELECT now() - interval '80 days' * random() AS t FROM generate_series(1, %s)) AS spread
"""
# A tenth of the images come from four other models, so that the table's statistics see several models, as
# a real site's do (with one model only, PostgreSQL's generic plan for "model = $1" expects every row to match).
OTHER_MODELS = "ARRAY['flux-schnell', 'flux-1.1-pro', 'flux-2-dev', 'flux-2-pro']"
INSERT_OTHER = INSERT_COMPLETED.replace("'flux-dev'", f"({OTHER_MODELS})[1 + floor(random() * 4)::int]")
# A few speech jobs among the images: the list filtered to them must not walk the account's other jobs.
RARE_MODEL, RARE_TYPE, RARE_JOBS = "kokoro", "TEXT_TO_SPEECH", 25
INSERT_RARE = INSERT_COMPLETED.replace("'flux-dev', 'TEXT_TO_IMAGE'", f"'{RARE_MODEL}', '{RARE_TYPE}'")
# And as many failed jobs: a list filtered by a rare status (a client polling ?status=failed) must not walk them either.
INSERT_FAILED = INSERT_COMPLETED.replace("'completed', 100", "'failed', 100")
ROW_AT = (
    "SELECT created_at, id FROM generation_job WHERE user_id = %s ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1"
)


def add_jobs(user_id: int, count: int, *, rare: int = 0) -> None:
    """Completed image jobs (nine in ten flux-dev) spread over the last 80 days, in INSERT ... SELECT
    generate_series chunks, and `rare` speech jobs and `rare` failed image jobs spread among them."""
    if rare:
        sql(INSERT_RARE, [user_id, rare])
        sql(INSERT_FAILED, [user_id, rare])
    for start in range(0, count, INSERT_CHUNK):
        chunk = min(INSERT_CHUNK, count - start)
        sql(INSERT_COMPLETED, [user_id, chunk - chunk // 10])
        sql(INSERT_OTHER, [user_id, chunk // 10])
    sql("VACUUM ANALYZE generation_job")
    sql("CHECKPOINT")  # write the new rows out now, not during the measurement


def deep_cursor(user_id: int, total: int) -> str:
    """The nextCursor the API hands out after the row 90% of the way down (made by the API's own code)."""
    from flixly_site.pagination import cursor_for
    from generation.models import Job

    created_at, job_id = sql(ROW_AT, [user_id, int(total * 0.9)])[0]
    return cursor_for(Job, created_at, job_id)


def median_ms(client: httpx.Client, path: str, user_id: int) -> float:
    reset_rate_limits(redis_client(), user_id)
    for _ in range(5):
        client.get(path)
    timings = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200 or len(response.json()["data"]) != 20:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return round(statistics.median(timings), 2)


def _sample_rss(pids: list[int], stop_event: threading.Event, peak: dict) -> None:
    deadline = time.monotonic() + 600
    while not stop_event.wait(0.02) and time.monotonic() < deadline:
        peak["rss_kb"] = max(peak["rss_kb"], *(memory_kb(pid, "VmRSS") for pid in pids))


def _download(client: httpx.Client, path: str) -> tuple[int, int, float]:
    """Bytes, CSV rows (less the header) and seconds until the first data row arrived."""
    size = lines = 0
    started, first_row = time.perf_counter(), None
    with client.stream("GET", path, timeout=600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"export: {response.status_code}")
        for chunk in response.iter_raw():
            size += len(chunk)
            lines += chunk.count(b"\n")
            if first_row is None and lines >= 2:
                first_row = time.perf_counter() - started
    return size, lines - 1, round(first_row or 0.0, 2)


def export(client: httpx.Client, pids: list[int]) -> dict:
    today = datetime.now(UTC).date()
    path = f"/api/v1/jobs/export.csv?from={today - timedelta(days=EXPORT_DAYS)}&to={today}"
    baseline = max(memory_kb(pid, "VmRSS") for pid in pids)
    peak, stop_event = {"rss_kb": baseline}, threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(pids, stop_event, peak), daemon=True)
    sampler.start()
    started = time.perf_counter()
    size, rows, first_row = _download(client, path)
    seconds = time.perf_counter() - started
    stop_event.set()
    sampler.join(timeout=5)
    return {
        "rows": rows,
        "megabytes": round(size / 1e6, 1),
        "seconds": round(seconds, 2),
        "first_row_seconds": first_row,
        "rows_per_second": round(rows / seconds),
        "worker_rss_before_mb": round(baseline / 1024, 1),
        "worker_peak_rss_mb": round(peak["rss_kb"] / 1024, 1),
        "worker_vmhwm_mb": round(max(memory_kb(pid, "VmHWM") for pid in pids) / 1024, 1),
    }


def measure(user_id: int, key: str, total: int, server_shape: tuple[int, int]) -> dict:
    """On a fresh gunicorn (so VmHWM is this measurement's peak): first page, deep page, then the export."""
    server = start_gunicorn(*server_shape)
    try:
        with httpx.Client(base_url=BASE_URL, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            first = median_ms(client, "/api/v1/jobs?limit=20", user_id)
            deep = median_ms(client, f"/api/v1/jobs?limit=20&cursor={deep_cursor(user_id, total)}", user_id)
            by_model = median_ms(client, f"/api/v1/jobs?limit=20&model={RARE_MODEL}", user_id)
            by_type = median_ms(client, f"/api/v1/jobs?limit=20&type={RARE_TYPE}", user_id)
            by_status = median_ms(client, "/api/v1/jobs?limit=20&status=failed", user_id)
            reset_rate_limits(redis_client(), user_id)
            return {
                "jobs": total,
                "first_page_ms": first,
                "deep_page_ms": deep,
                "rare_model_page_ms": by_model,
                "rare_type_page_ms": by_type,
                "rare_status_page_ms": by_status,
                "export": export(client, children(server.pid)),
            }
    finally:
        stop(server)


def scale(user_id: int, key: str, *, small: int, large: int | None, server: tuple[int, int]) -> dict:
    """Listing and export at `small` jobs, then (when `large`) at `large` jobs for the same account."""
    add_jobs(user_id, small, rare=RARE_JOBS)
    result = {"small": measure(user_id, key, small, server)}
    if large:
        started = time.monotonic()
        add_jobs(user_id, large - small)
        result["insert_seconds"] = round(time.monotonic() - started, 1)
        result["large"] = measure(user_id, key, large, server)
        for page in ("first_page", "deep_page", "rare_model_page", "rare_type_page", "rare_status_page"):
            result[f"{page}_ratio"] = round(result["large"][f"{page}_ms"] / result["small"][f"{page}_ms"], 2)
    return result
