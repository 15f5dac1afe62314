from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import EntryKind, LedgerEntry
from billing.services import wallet_balance
from generation.models import Job, JobEvent, JobStatus
from generation.providers.base import ProviderError
from generation.services import job_claim, job_fail, jobs_reap
from tests.generation.conftest import generate

pytestmark = pytest.mark.django_db


def submit(api):
    return generate(api, {"model": "scripted-chat", "type": "CHAT", "prompt": "hi"}).json()["data"]["jobId"]


def refunds(job_id) -> int:
    return LedgerEntry.objects.filter(kind=EntryKind.REFUND, reference_id=str(job_id)).count()


def test_a_successful_job_completes_with_its_output(api, funded, scripted):
    job = Job.objects.get(pk=submit(api))
    assert (job.status, job.text, job.progress) == (JobStatus.COMPLETED, "done", 100)
    assert wallet_balance(user_id=funded.pk) == 95


def test_a_permanent_provider_error_fails_and_refunds_once(api, funded, scripted):
    scripted.script = [ProviderError("upstream said no: secret detail", transient=False)]
    job = Job.objects.get(pk=submit(api))
    assert job.status == JobStatus.FAILED
    assert job.error == "The generation failed. Your credits were refunded."
    assert "secret detail" not in api.get(f"/api/v1/jobs/{job.pk}").content.decode()
    assert (job.credits_refunded, refunds(job.pk)) == (5, 1)
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_crash_fails_the_job_with_a_generic_message(api, funded, scripted):
    scripted.script = [RuntimeError("boom at /srv/app.py line 3")]
    job = Job.objects.get(pk=submit(api))
    assert job.status == JobStatus.FAILED
    assert "boom" in job.error_detail
    assert "boom" not in job.error


def test_failing_twice_refunds_once(api, funded, scripted, no_worker):
    job_id = submit(api)
    assert job_fail(job_id=job_id, detail="first")
    assert not job_fail(job_id=job_id, detail="second")
    assert refunds(job_id) == 1


def test_a_job_is_claimed_once(api, funded, no_worker, scripted):
    job_id = submit(api)
    assert job_claim(job_id=job_id) is not None
    assert job_claim(job_id=job_id) is None
    assert Job.objects.get(pk=job_id).attempts == 1


def test_a_redelivered_message_does_nothing_twice(api, funded, scripted):
    from generation.tasks import run_job

    job_id = submit(api)
    run_job.apply(args=[job_id])
    assert scripted.calls == 1
    assert JobEvent.objects.filter(job_id=job_id, kind="completed").count() == 1


def test_a_job_committed_just_after_the_workers_first_look_still_runs(api, funded, scripted, no_worker, monkeypatch):
    """The message is published inside the submit's transaction: the worker's claim can miss the row that
    the commit makes visible a moment later."""
    from generation import tasks

    job_id, real_claim, looks = submit(api), tasks.job_claim, []

    def claim_before_the_commit(*, job_id, worker="", message=""):
        looks.append(job_id)
        return None if len(looks) == 1 else real_claim(job_id=job_id, worker=worker, message=message)

    monkeypatch.setattr(tasks, "job_claim", claim_before_the_commit)
    tasks.run_job.apply(args=[job_id])
    job = Job.objects.get(pk=job_id)
    assert (job.status, scripted.calls, len(looks)) == (JobStatus.COMPLETED, 1, 2)


def test_transient_errors_are_retried(api, funded, scripted, no_worker):
    from generation.tasks import run_job

    scripted.script = [ProviderError("busy", transient=True)]
    job_id = submit(api)
    run_job.apply(args=[job_id])  # the retry runs at once when tasks execute inline
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts, scripted.calls) == (JobStatus.COMPLETED, 2, 2)
    assert "retried" in JobEvent.objects.filter(job_id=job_id).values_list("kind", flat=True)
    assert refunds(job_id) == 0


def test_the_reaper_re_enqueues_jobs_left_queued(api, funded, scripted, no_worker):
    job_id = submit(api)
    assert jobs_reap()["requeued"] == 0
    counts = jobs_reap(now=timezone.now() + timedelta(minutes=3))
    assert counts["requeued"] == 1
    assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED


def test_the_reaper_retries_a_stuck_job_once_then_fails_and_refunds_it(api, funded, scripted, no_worker):
    job_id = submit(api)
    later = timezone.now() + timedelta(hours=1)
    job_claim(job_id=job_id)
    assert jobs_reap(now=later)["retried"] == 1
    job_claim(job_id=job_id)
    assert jobs_reap(now=later + timedelta(hours=1))["failed"] == 1
    assert jobs_reap(now=later + timedelta(hours=2)) == {"requeued": 0, "retried": 0, "failed": 0}
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED
    assert refunds(job_id) == 1
    assert wallet_balance(user_id=funded.pk) == 100


def test_canceling_a_running_job_stops_it_at_the_next_progress_step(api, funded, scripted, no_worker):
    from generation.services import job_cancel, job_execute

    job_id = submit(api)
    job = job_claim(job_id=job_id)
    job_cancel(user=funded, job_id=job_id)
    job_execute(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    assert job.credits_refunded == 5
    assert refunds(job_id) == 1


def test_progress_is_recorded_as_events(api, funded, scripted):
    job_id = submit(api)
    kinds = list(JobEvent.objects.filter(job_id=job_id).values_list("kind", flat=True))
    assert kinds == ["created", "started", "progress", "completed"]


def test_a_redelivered_message_takes_over_a_job_whose_worker_died(api, funded, scripted, no_worker):
    from generation.services import job_take_over

    job_id = submit(api)
    job_claim(job_id=job_id)  # the first worker claimed it, then died
    job = job_take_over(job_id=job_id)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 2)


def test_a_job_whose_workers_died_twice_is_failed_and_refunded_once(api, funded, scripted, no_worker):
    from generation.services import job_take_over

    job_id = submit(api)
    job_claim(job_id=job_id)
    job_take_over(job_id=job_id)
    assert job_take_over(job_id=job_id) is None
    assert job_take_over(job_id=job_id) is None
    assert Job.objects.get(pk=job_id).status == JobStatus.FAILED
    assert refunds(job_id) == 1


@pytest.mark.postgres
def test_a_submit_without_an_idempotency_key_works_on_postgresql(api, funded, scripted):
    # Regression: the parallel-task query once compared against a NUL-byte placeholder key,
    # which PostgreSQL refuses in text columns.
    assert generate(api, {"model": "scripted-chat", "type": "CHAT", "prompt": "hi"}).status_code == 202


def test_a_waited_for_job_that_failed_answers_with_the_refunded_balance(api, funded, scripted):
    scripted.script = [ProviderError("upstream said no", transient=False)]
    response = generate(api, {"model": "scripted-chat", "type": "CHAT", "prompt": "hi"}, Prefer="wait=5")
    assert response.status_code == 200 and response.json()["data"]["status"] == "failed"
    assert response["X-Credit-Balance"] == "100" == str(wallet_balance(user_id=funded.pk))
