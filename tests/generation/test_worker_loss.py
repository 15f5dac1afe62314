"""A worker node that stops beating (its machine lost, or started again under a new node name): the reaper takes
back its running jobs once it has been silent for FLIXLY_WORKER_LOST_AFTER, not when their deadline passes.

Every age here is set and judged by the database's clock (`ago`), as the reaper judges it: a worker's clock
plays no part in whether its node is silent.
"""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError
from django.db.models.functions import Now
from django.utils import timezone

import generation.heartbeat as heartbeat_module
from generation.heartbeat import Heartbeat
from generation.models import Job, JobStatus, WorkerNode
from generation.services import job_claim, jobs_reap, worker_node_beat
from tests.generation.conftest import generate

pytestmark = pytest.mark.django_db
NOTHING = {"requeued": 0, "retried": 0, "failed": 0}


@pytest.fixture(
    autouse=True,
    params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)],
)
def db_pass(request):
    """Each test in both passes: the database's clock is STRFTIME('now') on SQLite, STATEMENT_TIMESTAMP() on
    PostgreSQL."""
    return request.param


@pytest.fixture(autouse=True)
def lost_after(settings):
    settings.FLIXLY_WORKER_LOST_AFTER = 90
    return 90


def ago(seconds: float):
    """That many seconds before the database's clock."""
    return Now() - timedelta(seconds=seconds)


def running_on(api, worker: str, *, started_seconds_ago: float) -> str:
    job_id = generate(api, {"model": "scripted-chat", "type": "CHAT", "prompt": "hi"}).json()["data"]["jobId"]
    assert job_claim(job_id=job_id, worker=worker)
    Job.objects.filter(pk=job_id).update(started_at=ago(started_seconds_ago))
    return job_id


def state(job_id: str) -> tuple[str, int, str]:
    job = Job.objects.get(pk=job_id)
    return job.status, job.attempts, job.worker


# --- the beat -----------------------------------------------------------------------------------------------


def test_a_beat_is_one_statement_once_the_node_has_its_row(django_assert_num_queries):
    worker_node_beat(name="worker@a")
    with django_assert_num_queries(1):
        worker_node_beat(name="worker@a")
    assert list(WorkerNode.objects.values_list("name", flat=True)) == ["worker@a"]


def test_a_beat_records_the_databases_clock_not_the_workers(api, funded, scripted, no_worker):
    job_id = running_on(api, "worker@a", started_seconds_ago=300)
    with time_machine.travel(timezone.now() - timedelta(hours=1)):  # the worker's clock stepped back an hour
        worker_node_beat(name="worker@a")
    seen = WorkerNode.objects.get(name="worker@a").seen_at
    assert abs(seen - timezone.now()) < timedelta(minutes=1)
    assert jobs_reap() == NOTHING
    assert state(job_id)[0] == JobStatus.RUNNING


# --- the heartbeat thread (no database: the beat itself is counted) -----------------------------------------


def test_the_heartbeat_beats_from_its_own_thread_while_the_caller_is_busy(monkeypatch):
    beats = threading.Semaphore(0)
    monkeypatch.setattr(heartbeat_module, "worker_node_beat", lambda *, name: beats.release())
    heartbeat = Heartbeat(name="worker@a", interval=0.01)
    heartbeat.start()
    try:
        for _ in range(3):  # the test's thread blocks here, as a long task blocks a solo pool's event loop
            assert beats.acquire(timeout=5)
    finally:
        heartbeat.stop()
    assert not heartbeat.thread.is_alive()


def test_a_beat_that_fails_is_logged_and_the_next_one_tries_again(monkeypatch, caplog):
    calls = threading.Semaphore(0)

    def flaky(*, name):
        calls.release()
        raise OperationalError("the database is restarting")

    monkeypatch.setattr(heartbeat_module, "worker_node_beat", flaky)
    heartbeat = Heartbeat(name="worker@a", interval=0.01)
    heartbeat.start()
    try:
        assert calls.acquire(timeout=5) and calls.acquire(timeout=5)
    finally:
        heartbeat.stop()
    assert "heartbeat of worker@a failed" in caplog.text
