"""Staff follow jobs in the admin and can fail an unfinished one, which refunds it."""

import pytest

from billing.services import wallet_balance
from generation.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_job(user) -> Job:
    return Job.objects.create(user=user, model_id="local-image", type="TEXT_TO_IMAGE", route="local", credits_charged=5)


def test_staff_who_may_only_view_jobs_cannot_fail_and_refund_them(staff_client, user, queued_job):
    client = staff_client("generation.view_job")
    assert 'value="fail_and_refund"' not in client.get("/admin/generation/job/").content.decode()
    assert (
        'value="fail_and_refund"' not in client.get(f"/admin/generation/job/{queued_job.pk}/change/").content.decode()
    )
    form = {"action": "fail_and_refund", "_selected_action": [queued_job.pk], "index": 0}
    client.post("/admin/generation/job/", form)
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.QUEUED and wallet_balance(user_id=user.pk) == 0


def test_fail_and_refund_refunds_the_job_and_is_in_its_history(admin_client, user, queued_job):
    from django.contrib.admin.models import LogEntry

    form = {"action": "fail_and_refund", "_selected_action": [queued_job.pk], "index": 0}
    admin_client.post("/admin/generation/job/", form)
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.FAILED and wallet_balance(user_id=user.pk) == 5
    [entry] = LogEntry.objects.filter(object_id=str(queued_job.pk))
    assert entry.change_message == "Failed and refunded by the admin action."
