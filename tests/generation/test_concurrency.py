"""Submits racing each other on real PostgreSQL: one job and one charge per Idempotency-Key."""

import json
from http import HTTPStatus

import pytest
from django.test import Client

from billing.models import LedgerEntry
from billing.services import wallet_balance
from generation.models import Job
from tests.billing.test_concurrency import after_a_lock_holder, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BODY = json.dumps({"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "A cat in a top hat"})


@pytest.fixture(autouse=True)
def roomy_plan(user):
    user.__class__.objects.filter(pk=user.pk).update(plan_id="pro-plus")  # 200 requests a minute


def submit(raw_key: str, key: str, body: str = BODY) -> tuple[int, str | None]:
    response = Client().post(
        "/api/v1/generate",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_key}", "Idempotency-Key": key},
    )
    return response.status_code, response.json().get("data", {}).get("jobId")


def test_twenty_racing_submits_with_one_idempotency_key_make_one_job_charged_once(funded, raw_key, no_worker):
    results = run_concurrently(lambda _: submit(raw_key, "race-1"), 20)
    assert {status for status, _ in results} == {HTTPStatus.ACCEPTED}
    assert len({job_id for _, job_id in results}) == 1
    job = Job.objects.get()
    assert LedgerEntry.objects.filter(user=funded, amount__lt=0).count() == 1
    assert wallet_balance(user_id=funded.pk) == 100 - job.credits_charged


def test_racing_submits_with_one_key_and_other_bodies_charge_once_and_the_rest_are_409(funded, raw_key, no_worker):
    bodies = [json.dumps({**json.loads(BODY), "prompt": f"prompt {index}"}) for index in range(10)]
    results = run_concurrently(lambda index: submit(raw_key, "race-2", bodies[index]), 10, workers=10)
    statuses = sorted(status for status, _ in results)
    assert statuses == [HTTPStatus.ACCEPTED] + [HTTPStatus.CONFLICT] * 9
    assert Job.objects.count() == 1
    assert wallet_balance(user_id=funded.pk) == 100 - Job.objects.get().credits_charged


def test_racing_retries_of_a_submit_that_took_the_last_credits_all_get_its_job(user, raw_key, no_worker):
    from billing.services import wallet_adjust

    quote = (
        Client()
        .post(
            "/api/v1/generate?dryRun=true",
            BODY,
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw_key}"},
        )
        .json()["data"]
    )
    wallet_adjust(user_id=user.pk, amount=quote["creditsCharged"], reason="exactly one job")
    results = run_concurrently(lambda _: submit(raw_key, "race-3"), 10, workers=10)
    assert {status for status, _ in results} == {HTTPStatus.ACCEPTED}  # never 402 for the job that was made
    assert len({job_id for _, job_id in results}) == 1
    assert wallet_balance(user_id=user.pk) == 0 and Job.objects.count() == 1


def test_racing_submits_past_the_parallel_task_limit_start_exactly_the_limit_and_charge_only_those(
    funded, raw_key, no_worker
):
    from accounts.models import Plan

    Plan.objects.filter(slug="pro-plus").update(parallel_tasks=3)
    results = run_concurrently(lambda index: submit(raw_key, f"limit-{index}"), 12, workers=12)
    statuses = sorted(status for status, _ in results)
    assert statuses == [HTTPStatus.ACCEPTED] * 3 + [HTTPStatus.TOO_MANY_REQUESTS] * 9
    jobs = Job.objects.all()
    assert len(jobs) == 3
    assert wallet_balance(user_id=funded.pk) == 100 - sum(job.credits_charged for job in jobs)
    assert LedgerEntry.objects.filter(user=funded, amount__lt=0).count() == 3


def test_test_mode_and_live_submits_racing_share_one_parallel_task_limit(funded, raw_key, make_key, no_worker):
    from accounts.models import KeyMode, Plan, Scope

    Plan.objects.filter(slug="pro-plus").update(parallel_tasks=3)
    test_key = make_key(funded, mode=KeyMode.TEST, scopes=list(Scope.values))
    results = run_concurrently(
        lambda index: submit(raw_key if index % 2 else test_key, f"mixed-{index}"), 12, workers=12
    )
    assert sorted(status for status, _ in results) == [HTTPStatus.ACCEPTED] * 3 + [HTTPStatus.TOO_MANY_REQUESTS] * 9
    assert Job.objects.count() == 3
    live_jobs = Job.objects.filter(is_test=False)
    assert wallet_balance(user_id=funded.pk) == 100 - sum(job.credits_charged for job in live_jobs)


def test_racing_submits_on_a_key_past_its_24_hours_all_get_one_new_job_charged_once(funded, raw_key, no_worker):
    from datetime import timedelta

    from django.utils import timezone

    status, old_id = submit(raw_key, "day-old")
    assert status == HTTPStatus.ACCEPTED
    Job.objects.filter(pk=old_id).update(status="completed", created_at=timezone.now() - timedelta(hours=25))
    results = run_concurrently(lambda _: submit(raw_key, "day-old"), 10, workers=10)
    assert {status for status, _ in results} == {HTTPStatus.ACCEPTED}
    new_ids = {job_id for _, job_id in results}
    assert len(new_ids) == 1 and old_id not in new_ids
    assert LedgerEntry.objects.filter(user=funded, amount__lt=0).count() == 2


def test_deactivation_racing_the_owners_cancels_and_a_worker_refunds_each_job_once(funded, raw_key, no_worker):
    from accounts.services import user_deactivate
    from generation.models import JobStatus
    from generation.services import job_cancel, job_claim

    job_ids = [submit(raw_key, f"job-{index}")[1] for index in range(4)]
    assert all(job_ids)
    racers = [
        lambda: user_deactivate(user=funded),
        *(lambda job_id=job_id: job_cancel(user=funded, job_id=job_id) for job_id in job_ids),
        *(lambda job_id=job_id: job_claim(job_id=job_id) for job_id in job_ids),
    ]
    run_concurrently(lambda index: racers[index](), len(racers), workers=len(racers))
    for job in Job.objects.filter(pk__in=job_ids):
        refunds = LedgerEntry.objects.filter(kind="refund", reference_id=str(job.pk)).count()
        assert (job.status, refunds) in {(JobStatus.CANCELED, 1), (JobStatus.RUNNING, 0)}, job.pk
        assert job.status == JobStatus.CANCELED or job.cancel_requested  # a running one is asked to stop
    charged = sum(
        Job.objects.filter(pk__in=job_ids, status=JobStatus.RUNNING).values_list("credits_charged", flat=True)
    )
    assert wallet_balance(user_id=funded.pk) == 100 - charged


@pytest.mark.parametrize("holder_mode", ["live", "test"])
def test_a_submit_that_waited_on_another_submits_lock_counts_its_job(funded, raw_key, make_key, no_worker, holder_mode):
    from accounts.models import KeyMode, Plan, Scope

    Plan.objects.filter(slug="pro-plus").update(parallel_tasks=1)
    holder_key = raw_key if holder_mode == "live" else make_key(funded, mode=KeyMode.TEST, scopes=list(Scope.values))

    def hold() -> None:  # a submit, kept from committing until the other waits on the wallet's lock
        assert submit(holder_key, "holder")[0] == HTTPStatus.ACCEPTED

    status, _ = after_a_lock_holder(hold, lambda: submit(raw_key, "waiter"))
    assert status == HTTPStatus.TOO_MANY_REQUESTS
    assert Job.objects.count() == 1
    charged = Job.objects.get().credits_charged if holder_mode == "live" else 0
    assert wallet_balance(user_id=funded.pk) == 100 - charged


def test_a_cancel_racing_a_resubmit_of_its_jobs_idempotency_key_never_deadlocks(funded, raw_key, no_worker):
    # The cancel updates the job (its row in the (account, key) index), then refunds through the wallet;
    # the resubmit locks the wallet, then meets that index entry: both must take the wallet first.
    from billing.services import wallet_adjust

    wallet_adjust(user_id=funded.pk, amount=1000, reason="room for every round")
    statuses = []
    for round_number in range(30):
        key = f"cancel-race-{round_number}"
        _, job_id = submit(raw_key, key)

        def cancel_or_resubmit(index: int, job_id=job_id, key=key) -> int:
            if index == 0:
                return (
                    Client()
                    .post(f"/api/v1/jobs/{job_id}/cancel", headers={"Authorization": f"Bearer {raw_key}"})
                    .status_code
                )
            return submit(raw_key, key)[0]

        statuses.extend(run_concurrently(cancel_or_resubmit, 2, workers=2))
    assert HTTPStatus.INTERNAL_SERVER_ERROR not in statuses, statuses
    refunds = LedgerEntry.objects.filter(user=funded, kind="refund")
    assert refunds.count() == Job.objects.filter(status="canceled").count() == 30
    assert wallet_balance(user_id=funded.pk) == 1100
