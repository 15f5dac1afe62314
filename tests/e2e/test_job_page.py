"""An unfinished job's page follows the job in place: the focus and the reading position stay where the user
left them, and a change of status is announced politely."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from generation.models import AiModel, Job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "var/test/screenshots"


@pytest.fixture
def running_job(signed_in, live_server, catalog, django_user_model):
    model = AiModel.objects.get(pk="local-chat")
    return Job.objects.create(
        user=django_user_model.objects.get(email="someone@example.com"), model=model, type="CHAT",
        params={"prompt": "Say hello"}, status="running", route=model.route, credits_charged=1, progress=40,
        started_at=timezone.now(),
    )  # fmt: skip


def test_a_running_jobs_page_keeps_the_focus_while_it_follows_the_job(signed_in, live_server, running_job):
    # A <meta> refresh reloaded the page every 2 s: the focus went back to the top before a keyboard user
    # could reach Cancel, and a screen reader started reading the page again each time.
    page = signed_in
    page.goto(f"{live_server.url}/jobs/{running_job.pk}/")
    assert page.locator('meta[http-equiv="refresh"]').count() == 0  # only inside <noscript>
    cancel = page.get_by_role("button", name="Cancel job")
    cancel.focus()
    Job.objects.filter(pk=running_job.pk).update(progress=70)
    expect(page.locator("progress")).to_have_attribute("value", "70", timeout=6000)
    expect(page.get_by_text("70% done.")).to_be_visible()
    expect(cancel).to_be_focused()
    expect(page.locator("#job-announce")).to_have_text("")  # progress is not read out every 2 s


def test_a_finished_job_is_announced_and_shown_without_moving_the_focus(signed_in, live_server, running_job):
    page = signed_in
    page.goto(f"{live_server.url}/jobs/{running_job.pk}/")
    back = page.get_by_role("link", name="All jobs")
    back.focus()
    Job.objects.filter(pk=running_job.pk).update(status="completed", text="Hello there.", completed_at=timezone.now())
    announce = page.locator("#job-announce")
    expect(announce).to_have_text("Job status: Completed.", timeout=6000)
    assert announce.get_attribute("role") == "status"
    expect(page.get_by_text("Hello there.")).to_be_visible()
    expect(page.locator("#job-status")).to_have_text("Completed")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    expect(back).to_be_focused()
    page.screenshot(path=f"{SCREENSHOTS}/job-finished-in-place.png", full_page=True)


def test_when_the_focused_cancel_button_goes_the_focus_goes_to_the_heading(signed_in, live_server, running_job):
    page = signed_in
    page.goto(f"{live_server.url}/jobs/{running_job.pk}/")
    page.get_by_role("button", name="Cancel job").focus()
    Job.objects.filter(pk=running_job.pk).update(status="failed", error="The model gave up.", credits_refunded=1)
    expect(page.locator("#job-announce")).to_have_text("Job status: Failed.", timeout=6000)
    expect(page.get_by_role("heading", level=1)).to_be_focused()  # not lost to the top of the page
    expect(page.get_by_text("The model gave up.")).to_be_visible()


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_without_javascript_the_page_still_reloads_itself(signed_in, live_server, running_job):
    page = signed_in
    page.goto(f"{live_server.url}/jobs/{running_job.pk}/")
    Job.objects.filter(pk=running_job.pk).update(progress=90)
    expect(page.get_by_text("90% done.")).to_be_visible(timeout=6000)
