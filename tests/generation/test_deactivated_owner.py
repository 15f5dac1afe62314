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


@pytest.fixture
def deactivate(django_capture_on_commit_callbacks):
    """Staff deactivate the account, and that commits."""

    def run(user) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            user_deactivate(user=user)

    return run


def test_deactivating_cancels_and_refunds_the_accounts_queued_jobs(deactivate, api, funded, scripted, no_worker):
    User.objects.filter(pk=funded.pk).update(plan_id="pro")  # two jobs at a time
    first, second = submit(api), submit(api)
    assert wallet_balance(user_id=funded.pk) == 90
    deactivate(funded)
    for job_id in (first, second):
        job = Job.objects.get(pk=job_id)
        assert (job.status, job.credits_refunded, refunds(job_id)) == (JobStatus.CANCELED, 5, 1)
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_running_job_of_a_deactivated_account_stops_at_its_next_progress_step(
    deactivate, api, funded, scripted, no_worker
):
    job = job_claim(job_id=submit(api))
    deactivate(funded)
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


def test_another_accounts_jobs_are_left_alone(deactivate, api, funded, scripted, no_worker, django_user_model):
    job_id = submit(api)
    other = django_user_model.objects.create_user(email="bob@example.com", password="correct horse battery")
    deactivate(other)
    assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED


def test_staff_deactivating_from_the_list_stops_the_accounts_jobs(
    admin_client, api, funded, scripted, no_worker, django_capture_on_commit_callbacks
):
    from tests.admin_actions import run_action

    job_id = submit(api)
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "/admin/accounts/user/", "deactivate", funded.pk)
    assert Job.objects.get(pk=job_id).status == JobStatus.CANCELED
    assert wallet_balance(user_id=funded.pk) == 100


def test_staff_unticking_active_stops_the_jobs_once_the_page_is_saved(
    admin_client, api, funded, scripted, no_worker, django_capture_on_commit_callbacks
):
    """The admin saves a page in one transaction: the jobs are stopped after it commits, so a job that
    commits meanwhile meets an account a worker already sees as inactive."""
    from tests.accounts.test_user_admin import change_form

    job_id = submit(api)
    form = change_form(funded, plan="pro")
    del form["is_active"]  # Active unticked, the plan changed in the same save
    with django_capture_on_commit_callbacks() as after_commit:
        admin_client.post(f"/admin/accounts/user/{funded.pk}/change/", form)
    assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED  # not before the commit
    for callback in after_commit:
        callback()
    funded.refresh_from_db()
    assert (funded.is_active, funded.plan_id) == (False, "pro")
    assert Job.objects.get(pk=job_id).status == JobStatus.CANCELED
    assert refunds(job_id) == 1


def test_a_job_its_owner_canceled_is_refunded_once_when_the_account_is_deactivated(
    deactivate, api, funded, scripted, no_worker
):
    job_id = submit(api)
    api.post(f"/api/v1/jobs/{job_id}/cancel")
    deactivate(funded)
    assert (refunds(job_id), wallet_balance(user_id=funded.pk)) == (1, 100)


def test_a_free_test_mode_job_is_canceled_with_no_ledger_entry(
    deactivate, client, funded, make_key, scripted, no_worker
):
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {make_key(funded, mode='test', scopes=['generate'])}"
    job_id = submit(client)
    deactivate(funded)
    assert Job.objects.get(pk=job_id).status == JobStatus.CANCELED
    assert (refunds(job_id), wallet_balance(user_id=funded.pk)) == (0, 100)


def test_the_owners_webhook_hears_of_the_refund(deactivate, api, funded, scripted, no_worker):
    from generation.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(user=funded, url="https://hooks.example.com/flixly", secret="whsec_x")
    job_id = submit(api)
    deactivate(funded)
    assert WebhookDelivery.objects.filter(user=funded, event="job.refunded", job_id=job_id).exists()
