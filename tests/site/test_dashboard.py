import re

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


def test_the_dashboard_counts_only_the_keys_that_still_work_as_active(client, user, make_key):
    from django.utils import timezone

    from accounts.models import ApiKey

    make_key(user, name="live")
    make_key(user, name="expired")
    make_key(user, name="revoked")
    ApiKey.objects.filter(name="expired").update(expires_at=timezone.now())
    ApiKey.objects.filter(name="revoked").update(revoked_at=timezone.now())
    client.force_login(user)
    assert "1 active key." in client.get("/dashboard/").content.decode()


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


# Addresses that are not pages people open: Stripe posts its events to the first, and Django's admin logs out
# only by POST (a GET that logged out could be triggered by any page).
NOT_DASHBOARD_PAGES = ("billing/stripe/webhook/", "admin/")
SAMPLE_ARGUMENTS = {"int": "1", "slug": "pro", "uuid": "7debdd01-f300-4683-9cfb-5854b6496a6c", "str": "x"}


def dashboard_addresses(patterns=None, prefix: str = "") -> list[str]:
    """Every address of the site's own pages, with sample arguments: all but the API's and Django's admin."""
    from django.urls import URLResolver, get_resolver

    addresses = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(("api/", "openai/", *NOT_DASHBOARD_PAGES)) or "^" in route:
            continue
        if isinstance(pattern, URLResolver):
            addresses += dashboard_addresses(pattern.url_patterns, route)
        else:
            addresses.append("/" + re.sub(r"<(\w+):\w+>", lambda m: SAMPLE_ARGUMENTS[m[1]], route))
    return addresses


def test_no_dashboard_address_answers_a_get_with_a_bare_405(client, user):
    # Buy, subscribe, cancel and send a test event did: a reload after the post showed "HTTP ERROR 405".
    client.force_login(user)
    addresses = dashboard_addresses()
    assert {"/billing/packs/1/buy/", "/settings/webhooks/test/", "/accounts/login/"} <= set(addresses)
    refused = [address for address in addresses if client.get(address).status_code == 405]
    assert refused == []
