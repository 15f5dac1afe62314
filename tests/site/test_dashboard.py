import pytest

from billing.services import wallet_adjust
from generation.models import Job

pytestmark = pytest.mark.django_db


def test_the_dashboard_shows_balance_plan_and_recent_jobs(client, user):
    from generation.catalog import catalog_sync

    catalog_sync()
    wallet_adjust(user_id=user.pk, amount=1234, reason="funds")
    job = Job.objects.create(user=user, model_id="local-image", type="TEXT_TO_IMAGE", route="local", status="failed")
    client.force_login(user)
    page = client.get("/dashboard/").content.decode()
    assert "1,234" in page
    assert "Free plan" in page
    assert job.model.name in page  # the model, the type and the status as the Jobs page names them
    assert "Text to image" in page and "TEXT_TO_IMAGE" not in page
    assert '<span class="badge failed">Failed</span>' in page
    assert f'href="/jobs/{job.pk}/"' in page


def test_account_settings_pages_link_to_each_other(client, user):
    client.force_login(user)
    page = client.get("/accounts/email/").content.decode()
    assert "/accounts/password/change/" in page


def test_favicon_ico_leads_to_the_logo(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith(".svg")


def test_signed_in_pages_are_kept_out_of_shared_caches(client, user):
    client.force_login(user)
    for path in ("/dashboard/", "/billing/", "/jobs/", "/settings/api-keys/", "/webhooks/"):
        cache_control = client.get(path)["Cache-Control"]
        assert "private" in cache_control and "no-store" in cache_control, path


def test_the_public_home_page_says_nothing_about_caching(client):
    assert "Cache-Control" not in client.get("/")
