"""A deactivated account's jobs stop: queued ones are canceled and refunded at once, running ones at their
next progress step, and one that slipped in as staff deactivated it is canceled when a worker picks it up."""

import pytest

from accounts.models import User
from accounts.services import user_deactivate
from billing.services import wallet_balance
from generation.models import Job, JobStatus
from generation.services import job_claim, job_execute
from tests.generation.test_lifecycle import refunds, submit

pytestmark = pytest.mark.django_db


def test_deactivating_cancels_and_refunds_the_accounts_queued_jobs(api, funded, scripted, no_worker):
    User.objects.filter(pk=funded.pk).update(plan_id="pro")  # two jobs at a time
    first, second = submit(api), submit(api)
    assert wallet_balance(user_id=funded.pk) == 90
    user_deactivate(user=funded)
    for job_id in (first, second):
        job = Job.objects.get(pk=job_id)
        assert (job.status, job.credits_refunded, refunds(job_id)) == (JobStatus.CANCELED, 5, 1)
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_running_job_of_a_deactivated_account_stops_at_its_next_progress_step(api, funded, scripted, no_worker):
    job = job_claim(job_id=submit(api))
    user_deactivate(user=funded)
    job_execute(job=job)
    job.refresh_from_db()
    assert (job.status, job.credits_refunded, refunds(job.pk)) == (JobStatus.CANCELED, 5, 1)
    assert scripted.calls == 1  # stopped at its first report, not run to the end


def test_a_job_queued_as_its_account_was_deactivated_is_canceled_when_claimed(api, funded, scripted, no_worker):
    job_id = submit(api)
    User.objects.filter(pk=funded.pk).update(is_active=False)  # deactivated between the submit and its commit
    assert job_claim(job_id=job_id) is None
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.credits_refunded, refunds(job_id)) == (JobStatus.CANCELED, 5, 1)
    assert scripted.calls == 0


def test_another_accounts_jobs_are_left_alone(api, funded, scripted, no_worker, django_user_model):
    job_id = submit(api)
    other = django_user_model.objects.create_user(email="bob@example.com", password="correct horse battery")
    user_deactivate(user=other)
    assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED


def test_staff_deactivating_from_the_list_or_the_accounts_page_stops_its_jobs(
    admin_client, api, funded, scripted, no_worker
):
    from tests.accounts.test_user_admin import change_form
    from tests.admin_actions import run_action

    first = submit(api)
    run_action(admin_client, "/admin/accounts/user/", "deactivate", funded.pk)
    assert Job.objects.get(pk=first).status == JobStatus.CANCELED
    User.objects.filter(pk=funded.pk).update(is_active=True)  # reactivated
    second = submit(api)
    form = change_form(funded)
    del form["is_active"]  # Active unticked
    admin_client.post(f"/admin/accounts/user/{funded.pk}/change/", form)
    assert Job.objects.get(pk=second).status == JobStatus.CANCELED
    assert wallet_balance(user_id=funded.pk) == 100
