"""Staff follow jobs in the admin and can fail an unfinished one, which refunds it."""

import pytest
from django.contrib.messages import get_messages

from billing.services import wallet_balance
from generation.models import Job, JobStatus
from tests.admin_actions import offers_action, run_action

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_job(user) -> Job:
    return Job.objects.create(user=user, model_id="local-image", type="TEXT_TO_IMAGE", route="local", credits_charged=5)


def test_staff_who_may_only_view_jobs_cannot_fail_and_refund_them(staff_client, user, queued_job):
    client = staff_client("generation.view_job")
    assert not offers_action(client, "/admin/generation/job/", "fail_and_refund")
    assert not offers_action(client, f"/admin/generation/job/{queued_job.pk}/change/", "fail_and_refund")
    run_action(client, "/admin/generation/job/", "fail_and_refund", queued_job.pk)
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.QUEUED and wallet_balance(user_id=user.pk) == 0


def test_fail_and_refund_refunds_the_job_and_is_in_its_history(admin_client, user, queued_job):
    from django.contrib.admin.models import LogEntry

    run_action(admin_client, "/admin/generation/job/", "fail_and_refund", queued_job.pk)
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.FAILED and wallet_balance(user_id=user.pk) == 5
    [entry] = LogEntry.objects.filter(object_id=str(queued_job.pk))
    assert entry.change_message == "Failed and refunded by the admin action."


def test_fail_and_refund_counts_the_jobs_it_failed_in_words(admin_client, queued_job):
    response = run_action(admin_client, "/admin/generation/job/", "fail_and_refund", queued_job.pk)
    assert [str(message) for message in get_messages(response.wsgi_request)] == ["Failed and refunded 1 job."]


@pytest.fixture
def completed_job(user) -> Job:
    output = {"name": "outputs/1/job/1/0.png", "contentType": "image/png", "width": 64, "height": 64, "bytes": 90}
    return Job.objects.create(
        user=user,
        model_id="local-image",
        type="TEXT_TO_IMAGE",
        route="local",
        status=JobStatus.COMPLETED,
        credits_charged=5,
        outputs=[output],
    )


def test_a_jobs_page_is_a_record_with_its_files_linked_and_no_save_button(admin_client, completed_job):
    page = admin_client.get(f"/admin/generation/job/{completed_job.pk}/change/").content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page  # nothing on it can be changed
    assert "/outputs/" in page and ">0.png</a> (image/png, 64x64, 90 bytes)" in page


def test_the_jobs_list_fits_a_laptop_screen(admin_client, completed_job):
    page = admin_client.get("/admin/generation/job/").content.decode()
    assert f">{str(completed_job.pk)[:8]}</a>" in page  # a UUID in full wrapped over four lines
    # The type under the model and the credits under the status; tests/e2e/test_admin_layout.py measures the fit.
    assert "Flixly Local Image<br>Text to image" in page and "Completed<br>5 credits" in page


def test_staff_with_change_permission_still_fail_and_refund_from_the_list(staff_client, user, queued_job):
    client = staff_client("generation.view_job", "generation.change_job")
    run_action(client, "/admin/generation/job/", "fail_and_refund", queued_job.pk)
    queued_job.refresh_from_db()
    assert queued_job.status == JobStatus.FAILED


def test_a_webhook_deliverys_page_is_a_record_with_no_save_button(admin_client, completed_job):
    from generation.models import WebhookDelivery

    delivery = WebhookDelivery.objects.create(
        user=completed_job.user, job=completed_job, event="job.completed", url="https://example.com/hook", body="{}"
    )
    page = admin_client.get(f"/admin/generation/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "job.completed" in page and 'name="_save"' not in page


def test_staff_see_each_worker_node_and_when_it_last_beat_but_cannot_change_it(admin_client):
    from generation.models import WorkerNode
    from generation.services import worker_node_beat

    worker_node_beat(name="worker@box-1")
    node = WorkerNode.objects.get()
    page = admin_client.get("/admin/generation/workernode/").content.decode()
    assert "worker@box-1" in page and "column-seen_at" in page
    assert admin_client.get("/admin/generation/workernode/add/").status_code == 403
    page = admin_client.get(f"/admin/generation/workernode/{node.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "/delete/" not in page
