"""Benchmark 3: Celery worker throughput on the no-op provider (Redis broker), per pool configuration."""

import time

from bench.database import redis_client, sql
from bench.procs import celery_command, cpu_seconds, start, stop

DRAIN_TIMEOUT = 180.0
INSERT_QUEUED = """
INSERT INTO generation_job (id, user_id, api_key_id, is_test, model_id, type, params, status, cancel_requested,
    route, credits_charged, credits_refunded, input_file, outputs, text, usage, metadata, error, error_detail,
    request_hash, attempts, created_at, enqueued_at)
SELECT gen_random_uuid(), %s, NULL, false, 'bench-noop', 'CHAT',
    '{"messages": [{"role": "user", "content": "hi"}]}', 'queued', false, 'noop', 1, 0, '', '[]', '', '{}', '{}',
    '', '', '', 0, now(), now()
FROM generate_series(1, %s)
RETURNING id
"""
STARTED = "SELECT count(*) FROM generation_job WHERE model_id = 'bench-noop' AND started_at IS NOT NULL"
FINISHED = "SELECT count(*) FROM generation_job WHERE model_id = 'bench-noop' AND status NOT IN ('queued', 'running')"
OUTCOME = """
SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status <> 'completed'),
    min(started_at), max(completed_at)
FROM generation_job WHERE model_id = 'bench-noop'
"""


def _clear() -> None:
    sql("DELETE FROM generation_jobevent WHERE job_id IN (SELECT id FROM generation_job WHERE model_id = 'bench-noop')")
    sql("DELETE FROM generation_job WHERE model_id = 'bench-noop'")
    redis_client().delete("celery", "unacked", "unacked_index")


def _enqueue(user_id: int, jobs: int) -> None:
    """Queued job rows straight into the table, then one run_job message each, as a web process would send."""
    from generation.tasks import run_job

    ids = [row[0] for row in sql(INSERT_QUEUED, [user_id, jobs])]
    for job_id in ids:
        run_job.apply_async(args=[str(job_id)])


def _wait_until(query: str, count: int, interval: float) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        if sql(query)[0][0] >= count:
            return True
        time.sleep(interval)
    return False


def drain(user_id: int, jobs: int, pool: str, concurrency: int) -> dict:
    """Queue `jobs` first, then start a worker; time first claim -> last completion from the jobs' timestamps.

    The worker's CPU is counted from its first claim, so its start-up is left out."""
    _clear()
    _enqueue(user_id, jobs)
    worker = start(celery_command(pool, concurrency), "celery.log")
    try:
        if not _wait_until(STARTED, 1, 0.02):
            raise RuntimeError("the Celery worker claimed no job; see var/bench/celery.log")
        cpu_before = cpu_seconds(worker.pid)
        finished = _wait_until(FINISHED, jobs, 0.25)
        cpu = cpu_seconds(worker.pid) - cpu_before
    finally:
        stop(worker)
    completed, other, first_claim, last_done = sql(OUTCOME)[0]
    seconds = (last_done - first_claim).total_seconds() if completed else 0.0
    return {
        "pool": pool,
        "concurrency": concurrency,
        "jobs": jobs,
        "completed": completed,
        "not_completed": other,
        "all_finished": finished,
        "seconds": round(seconds, 2),
        "jobs_per_second": round(completed / seconds, 1) if seconds else 0.0,
        "worker_cpu_ms_per_job": round(1000 * cpu / max(1, completed), 2),
    }


def worker_throughput(user_id: int, jobs: int, configs: list[tuple[str, int]]) -> dict:
    runs = [drain(user_id, jobs, pool, concurrency) for pool, concurrency in configs]
    best = max(runs, key=lambda run: run["jobs_per_second"])
    _clear()
    return {"runs": runs, "best": best}
