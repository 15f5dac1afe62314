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
import generation.services as services
from accounts.models import User
from billing.models import EntryKind, LedgerEntry
from billing.services import wallet_balance
from generation.heartbeat import Heartbeat
from generation.models import Job, JobStatus, WorkerNode
from generation.services import job_claim, job_take_over, jobs_reap, worker_node_beat, worker_nodes_forget
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


def beat(name: str, *, seconds_ago: float = 0) -> None:
    worker_node_beat(name=name)
    WorkerNode.objects.filter(name=name).update(seen_at=ago(seconds_ago))


def running_on(api, worker: str, *, started_seconds_ago: float) -> str:
    job_id = generate(api, {"model": "scripted-chat", "type": "CHAT", "prompt": "hi"}).json()["data"]["jobId"]
    assert job_claim(job_id=job_id, worker=worker)
    Job.objects.filter(pk=job_id).update(started_at=ago(started_seconds_ago))
    return job_id


def state(job_id: str) -> tuple[str, int, str]:
    job = Job.objects.get(pk=job_id)
    return job.status, job.attempts, job.worker


def refunds(job_id: str) -> int:
    return LedgerEntry.objects.filter(reference_id=job_id, kind=EntryKind.REFUND).count()


# --- the reaper's rules -------------------------------------------------------------------------------------


def test_a_job_of_a_node_that_keeps_beating_is_left_running(api, funded, scripted, no_worker):
    beat("worker@a", seconds_ago=20)
    job_id = running_on(api, "worker@a", started_seconds_ago=600)
    assert jobs_reap() == NOTHING
    assert state(job_id) == (JobStatus.RUNNING, 1, "worker@a")


def test_a_job_of_a_node_silent_past_the_threshold_is_queued_again_once(api, funded, scripted, no_worker):
    beat("worker@a", seconds_ago=100)
    job_id = running_on(api, "worker@a", started_seconds_ago=300)
    assert jobs_reap() == {"requeued": 0, "retried": 1, "failed": 0}
    assert state(job_id)[:2] == (JobStatus.QUEUED, 1)
    assert jobs_reap() == NOTHING  # queued afresh: neither published again nor failed
    assert Job.objects.get(pk=job_id).events.filter(kind="retried").count() == 1


def test_a_job_whose_nodes_are_lost_on_both_attempts_is_failed_and_refunded_exactly_once(
    api, funded, scripted, no_worker
):
    job_id = running_on(api, "worker@a", started_seconds_ago=300)  # worker@a never beat: no row at all
    assert jobs_reap()["retried"] == 1
    beat("worker@b", seconds_ago=95)
    assert job_claim(job_id=job_id, worker="worker@b")
    Job.objects.filter(pk=job_id).update(started_at=ago(120))
    assert jobs_reap() == {"requeued": 0, "retried": 0, "failed": 1}
    assert jobs_reap() == NOTHING
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts, job.credits_refunded) == (JobStatus.FAILED, 2, job.credits_charged)
    assert refunds(job_id) == 1
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_node_without_a_beat_yet_keeps_a_job_younger_than_the_threshold(api, funded, scripted, no_worker):
    # A node just started may claim a job before its first beat lands.
    job_id = running_on(api, "worker@new", started_seconds_ago=30)
    assert jobs_reap() == NOTHING
    assert state(job_id) == (JobStatus.RUNNING, 1, "worker@new")


def test_a_silent_nodes_job_started_within_the_threshold_is_left_running(api, funded, scripted, no_worker):
    beat("worker@a", seconds_ago=100)
    job_id = running_on(api, "worker@a", started_seconds_ago=60)
    assert jobs_reap() == NOTHING
    assert state(job_id)[0] == JobStatus.RUNNING


def test_a_job_claimed_without_a_node_name_waits_for_its_deadline(api, funded, scripted, no_worker):
    job_id = running_on(api, "", started_seconds_ago=3600)
    assert jobs_reap() == NOTHING
    assert jobs_reap(now=timezone.now() + timedelta(hours=1))["retried"] == 1
    assert state(job_id)[0] == JobStatus.QUEUED


def test_only_the_silent_nodes_jobs_are_taken_back(api, funded, scripted, no_worker):
    User.objects.update(plan_id="pro-plus")  # two jobs at once
    beat("worker@alive", seconds_ago=5)
    beat("worker@gone", seconds_ago=200)
    alive = running_on(api, "worker@alive", started_seconds_ago=300)
    gone = running_on(api, "worker@gone", started_seconds_ago=300)
    assert jobs_reap()["retried"] == 1
    assert (state(alive)[0], state(gone)[0]) == (JobStatus.RUNNING, JobStatus.QUEUED)


def test_a_silent_nodes_job_taken_over_by_a_redelivered_message_is_left_to_its_new_attempt(
    api, funded, scripted, no_worker
):
    beat("worker@gone", seconds_ago=200)
    job_id = running_on(api, "worker@gone", started_seconds_ago=300)
    beat("worker@b")
    assert job_take_over(job_id=job_id, worker="worker@b")
    assert jobs_reap() == NOTHING
    assert state(job_id) == (JobStatus.RUNNING, 2, "worker@b")
    assert Job.objects.get(pk=job_id).events.filter(kind="retried").count() == 1


def test_a_takeover_between_the_reapers_read_and_its_write_wins(api, funded, scripted, no_worker, monkeypatch):
    beat("worker@gone", seconds_ago=200)
    beat("worker@b")
    job_id = running_on(api, "worker@gone", started_seconds_ago=300)
    real = services._retry_or_fail

    def taken_over_meanwhile(job, reason, final):
        job_take_over(job_id=job.pk, worker="worker@b")  # the redelivered message lands first
        return real(job, reason, final)

    monkeypatch.setattr(services, "_retry_or_fail", taken_over_meanwhile)
    assert jobs_reap() == NOTHING
    assert state(job_id) == (JobStatus.RUNNING, 2, "worker@b")
    assert Job.objects.get(pk=job_id).events.filter(kind="retried").count() == 1
    assert refunds(job_id) == 0


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


def test_nodes_silent_for_a_week_are_forgotten():
    beat("worker@old", seconds_ago=8 * 24 * 3600)
    beat("worker@recent", seconds_ago=3600)
    assert worker_nodes_forget() == 1
    assert list(WorkerNode.objects.values_list("name", flat=True)) == ["worker@recent"]


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
