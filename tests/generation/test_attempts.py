"""One attempt at a job at a time: a worker whose attempt was taken over (a redelivered message, the
reaper) can no longer change the job, refund it or touch the outputs of the attempt that replaced it."""

from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import User
from billing.models import EntryKind, LedgerEntry
from billing.services import wallet_balance
from generation.models import Job, JobStatus
from generation.providers.base import GenerationResult, OutputFile
from generation.services import (
    JobCanceled,
    _progress_reporter,
    job_cancel,
    job_cancel_finish,
    job_claim,
    job_complete,
    job_execute,
    job_fail,
    job_requeue,
    job_take_over,
    jobs_reap,
    jobs_take_back,
)
from generation.tasks import run_job
from tests.generation.conftest import ScriptedProvider, generate

pytestmark = pytest.mark.django_db


def submit(api) -> str:
    return generate(api, {"model": "scripted-chat", "type": "CHAT", "prompt": "hi"}).json()["data"]["jobId"]


def run_redelivered(job_id: str) -> None:
    """run_job as a worker runs a message the broker delivered again (its first worker looked lost)."""
    run_job.push_request(delivery_info={"redelivered": True}, retries=0, id="again")
    try:
        run_job.run(job_id)
    finally:
        run_job.pop_request()


def moves(job_id: str) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(reference_id=job_id).values_list("kind", "amount"))


def test_an_attempt_taken_over_while_alive_can_no_longer_report_complete_or_fail_the_job(
    api, funded, scripted, no_worker
):
    job_id = submit(api)
    first = job_claim(job_id=job_id)
    second = job_take_over(job_id=job_id)  # a redelivered message: the first worker looked lost
    with pytest.raises(JobCanceled):
        _progress_reporter(first)(50)
    assert not job_complete(job=first, outputs=[], text="stale", usage={}, metadata={})
    assert not job_fail(job_id=job_id, attempt=first.attempts, detail="the first attempt's late failure")
    assert not job_requeue(job_id=job_id, attempt=first.attempts, reason="the first attempt's late retry")
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts, job.progress, job.text) == (JobStatus.RUNNING, 2, 0, "")
    assert job_complete(job=second, outputs=[], text="fresh", usage={}, metadata={})
    assert Job.objects.get(pk=job_id).text == "fresh"
    assert moves(job_id) == [(EntryKind.DEBIT, -5)] and wallet_balance(user_id=funded.pk) == 95


def test_a_canceled_job_is_finished_only_by_the_attempt_that_runs_it(api, funded, scripted, no_worker, user):
    job_id = submit(api)
    first = job_claim(job_id=job_id)
    job_take_over(job_id=job_id)
    job_cancel(user=user, job_id=job_id)  # running: the worker stops at its next report
    job_cancel_finish(job=first)  # the stale attempt's stop does not end the running one
    assert Job.objects.get(pk=job_id).status == JobStatus.RUNNING and moves(job_id) == [(EntryKind.DEBIT, -5)]


def test_a_late_soft_time_limit_of_an_attempt_the_reaper_replaced_does_not_fail_the_new_one(
    api, funded, scripted, no_worker, monkeypatch
):
    job_id = submit(api)

    def run(self, request, progress, deadline):
        assert jobs_reap(now=timezone.now() + timedelta(seconds=400))["retried"] == 1
        assert job_claim(job_id=job_id).attempts == 2  # another worker runs the job now
        raise SoftTimeLimitExceeded()  # the first attempt's limit, raised late

    monkeypatch.setattr(ScriptedProvider, "run", run)
    run_job.apply(args=[job_id])
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 2)
    assert moves(job_id) == [(EntryKind.DEBIT, -5)]


def test_an_attempt_that_lost_the_job_keeps_its_hands_off_the_winners_outputs(
    api, funded, scripted, no_worker, monkeypatch, settings, tmp_path
):
    # S3 overwrites a file of the same name by default (AWS_S3_FILE_OVERWRITE): so does this storage.
    overwriting = {"location": str(tmp_path), "allow_overwrite": True}
    storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": overwriting}
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    job_id = submit(api)
    first = job_claim(job_id=job_id)
    calls = []

    def run(self, request, progress, deadline):
        calls.append(1)
        if len(calls) == 1:
            run_redelivered(job_id)  # the second attempt completes first
        path = request.workdir / "out.txt"
        path.write_text(f"attempt {len(calls)}")
        return GenerationResult(outputs=[OutputFile(path=path, content_type="text/plain", bytes=9)])

    monkeypatch.setattr(ScriptedProvider, "run", run)
    job_execute(job=first)
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.COMPLETED
    with default_storage.open(job.outputs[0]["name"]) as stored:
        assert stored.read() == b"attempt 2"


def test_a_claim_whose_read_went_stale_claims_nothing_rather_than_a_number_it_does_not_hold(
    api, funded, scripted, no_worker, monkeypatch
):
    import generation.services as services

    job_id = submit(api)
    real, once = services.timedelta, []

    def meanwhile(*args, **kwargs):  # runs between the claim's read of the job and its conditional UPDATE
        if not once:
            once.append(1)
            other = job_claim(job_id=job_id)  # another message's worker claims it and fails transiently
            job_requeue(job_id=job_id, attempt=other.attempts, reason="transient")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "timedelta", meanwhile)
    assert job_claim(job_id=job_id) is None  # it read attempt 0; the job has had attempt 1 since
    monkeypatch.setattr(services, "timedelta", real)
    fresh = job_claim(job_id=job_id)  # run_job looks again (_claim_once_committed): a fresh read claims it
    assert fresh.attempts == Job.objects.get(pk=job_id).attempts == 2


def test_a_restarting_worker_takes_back_only_its_own_running_jobs(api, funded, scripted, no_worker):
    User.objects.update(plan_id="pro-plus")  # three jobs at once
    mine, theirs, queued = submit(api), submit(api), submit(api)
    job_claim(job_id=mine, worker="worker@a")
    job_claim(job_id=theirs, worker="worker@b")

    assert jobs_take_back(worker="worker@a") == 1
    statuses = dict(Job.objects.filter(pk__in=[mine, theirs, queued]).values_list("id", "status"))
    assert {str(k): v for k, v in statuses.items()} == {
        mine: JobStatus.QUEUED,
        theirs: JobStatus.RUNNING,
        queued: JobStatus.QUEUED,
    }
    assert Job.objects.get(pk=mine).events.filter(kind="retried").count() == 1
    assert jobs_take_back(worker="worker@a") == 0  # nothing of its own left running
    assert jobs_take_back(worker="") == 0  # a claim that named no worker is the reaper's to find


def test_a_restarting_worker_clears_the_working_folders_its_killed_jobs_left(
    api, funded, scripted, no_worker, tmp_path, monkeypatch
):
    from types import SimpleNamespace

    import generation.services as services
    from generation.tasks import take_back_orphaned_jobs

    monkeypatch.setattr(services, "JOB_FOLDERS", tmp_path)
    folders = []
    run = lambda self, request, progress, deadline: folders.append(request.workdir) or GenerationResult(text="ok")  # noqa: E731
    monkeypatch.setattr(scripted, "run", run)
    job_execute(job=job_claim(job_id=submit(api), worker="worker@a"))
    assert folders[0].is_relative_to(tmp_path / "worker@a") and not folders[0].exists()  # removed when done
    left = [tmp_path / node / "job-killed-mid-video" for node in ("worker@a", "worker@b")]
    for folder in left:
        folder.mkdir(parents=True)
    take_back_orphaned_jobs(sender=SimpleNamespace(hostname="worker@a"))
    assert [folder.exists() for folder in left] == [False, True]  # worker@b may still be running its job


def test_a_job_whose_worker_died_on_every_attempt_is_failed_and_refunded_once_when_it_restarts(
    api, funded, scripted, no_worker
):
    job_id = submit(api)
    job_claim(job_id=job_id, worker="worker@a")
    assert jobs_take_back(worker="worker@a") == 1  # attempt 1 lost: queued again
    job_claim(job_id=job_id, worker="worker@a")
    assert jobs_take_back(worker="worker@a") == 1  # attempt 2 lost too: failed
    assert jobs_take_back(worker="worker@a") == 0
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.credits_refunded) == (JobStatus.FAILED, job.credits_charged)
    assert [kind for kind, _ in moves(job_id)].count(EntryKind.REFUND) == 1


def test_a_job_canceled_while_running_is_not_tried_again_after_a_transient_error(api, funded, scripted, no_worker):
    job_id = submit(api)
    running = job_claim(job_id=job_id)
    job_cancel(user=funded, job_id=job_id)  # running: the worker is asked to stop
    assert not job_requeue(job_id=job_id, attempt=running.attempts, reason="upstream timed out")
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.CANCELED and job.completed_at is not None
    assert sorted(moves(job_id)) == [(EntryKind.DEBIT, -5), (EntryKind.REFUND, 5)]
    assert not job_fail(job_id=job_id, attempt=running.attempts, detail="the worker's fallback after no retry")
    assert sorted(moves(job_id)) == [(EntryKind.DEBIT, -5), (EntryKind.REFUND, 5)]


def test_a_message_that_finds_its_job_queued_but_claims_nothing_says_so(
    api, funded, scripted, no_worker, monkeypatch, caplog
):
    import generation.tasks as tasks

    job_id = submit(api)
    monkeypatch.setattr(tasks, "job_claim", lambda **kwargs: None)  # each claim loses its race
    with caplog.at_level("WARNING", logger="flixly.jobs"):
        run_job.apply(args=[job_id])
    assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED  # the reaper's to requeue
    assert any(f"job {job_id} is queued but its message claimed nothing" in m for m in caplog.messages)


def test_a_message_whose_job_never_commits_says_so(no_worker, caplog):
    job_id = "6f1c1c7e-58b1-4a66-8f56-1b1c4f3c3a09"
    with caplog.at_level("WARNING", logger="flixly.jobs"):
        run_job.apply(args=[job_id])
    assert any(f"job {job_id} was not found" in m for m in caplog.messages)


def test_a_stale_redelivery_leaves_alone_the_attempt_that_replaced_its_own(api, funded, scripted, no_worker):
    """Its node died running the job; the reaper queued the job again and another worker runs it now. The
    dead node's message, which Redis hands out again an hour later, must not fail the running attempt."""
    job_id = submit(api)
    job_claim(job_id=job_id, message="again:0")  # run_redelivered's message, on the node that died
    assert jobs_reap(now=timezone.now() + timedelta(seconds=400))["retried"] == 1
    job_claim(job_id=job_id, message="published-by-the-reaper:0")
    run_redelivered(job_id)
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 2)
    assert moves(job_id) == [(EntryKind.DEBIT, -5)]


def test_a_redelivery_of_the_message_running_the_job_takes_it_over(api, funded, scripted, no_worker):
    job_id = submit(api)
    job_claim(job_id=job_id, message="again:0")  # its worker process was killed: the message comes back at once
    run_redelivered(job_id)
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts) == (JobStatus.COMPLETED, 2)
