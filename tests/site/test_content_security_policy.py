"""Every page carries a strict Content-Security-Policy: scripts and styles from this server or with the
request's nonce, nothing inline, no framing, forms only to this server and Stripe."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.site.test_settings import run_manage

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
STRICT = {
    "default-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
}


def policy_of(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().partition(" ")[::2] for part in header.split(";"))


@pytest.mark.parametrize("path", ["/", "/docs/", "/accounts/login/", "/accounts/signup/"])
def test_a_public_page_sends_a_strict_policy(client, path):
    policy = policy_of(client.get(path))
    assert policy.items() >= STRICT.items()
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"  # no page here needs a nonce
    assert policy["form-action"].startswith("'self' ")
    assert "'unsafe-inline'" not in str(policy) and "'unsafe-eval'" not in str(policy)


@pytest.mark.parametrize(
    "path", ["/dashboard/", "/generate/", "/jobs/", "/settings/api-keys/", "/settings/webhooks/", "/accounts/email/"]
)
def test_a_signed_in_page_sends_the_same_policy(client, user, path):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    assert policy_of(response).items() >= STRICT.items()


def test_outputs_shown_on_the_site_may_come_from_its_own_address(client):
    policy = policy_of(client.get("/"))
    assert policy["img-src"] == f"'self' data: {settings.SITE_URL}"  # output links are absolute
    assert policy["media-src"] == f"'self' {settings.SITE_URL}"


def test_the_admin_changelist_inline_code_carries_the_nonce_its_policy_names(admin_client):
    response = admin_client.get("/admin/generation/job/")
    nonce = re.search(r"'nonce-([^']+)'", policy_of(response)["script-src"]).group(1)
    assert policy_of(response)["style-src"] == f"'self' 'nonce-{nonce}'"
    assert set(re.findall(r'nonce="([^"]*)"', response.content.decode())) == {nonce}


def test_a_second_request_gets_a_new_nonce(admin_client):
    first, second = (policy_of(admin_client.get("/admin/"))["script-src"] for _ in range(2))
    assert "'nonce-" in first and first != second


def test_the_api_docs_page_sends_its_own_policy_only(client):
    response = client.get("/api/docs")
    policy = policy_of(response)
    assert "Content-Security-Policy-Report-Only" not in response
    assert policy["style-src"] == "'self' 'unsafe-inline'"  # Redoc adds its own <style> elements as it runs
    assert policy["script-src"] == "'self'" and policy["worker-src"] == "'self' blob:"
    assert policy.items() >= STRICT.items() and policy["img-src"] == "'self' data:"


INLINE = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*\bnonce=)[^>]*>", re.I), "inline <script> without a nonce"),
    (re.compile(r"<style\b(?![^>]*\bnonce=)[^>]*>", re.I), "<style> without a nonce"),
    (re.compile(r"\sstyle=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_no_template_holds_code_the_policy_would_block():
    found = [
        f"{path.relative_to(ROOT)}: {what}"
        for folder in [ROOT / "templates", *ROOT.glob("*/templates")]
        for path in folder.rglob("*.html")
        for pattern, what in INLINE
        if pattern.search(path.read_text())
    ]
    assert found == []


STORAGE_ENV = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-secret"}
SHOWN_FROM = """
from urllib.parse import urlsplit
from django.conf import settings
from generation.outputs import output_url
link = urlsplit(output_url("outputs/job/0.mp4"))
origin = f"{link.scheme}://{link.netloc}"
print(origin, origin in settings.CONTENT_POLICY["img-src"] and origin in settings.CONTENT_POLICY["media-src"])
"""


@pytest.mark.parametrize(
    "storage",
    [
        {"AWS_STORAGE_BUCKET_NAME": "flixly-outputs"},
        {"AWS_STORAGE_BUCKET_NAME": "flixly-outputs", "AWS_S3_REGION_NAME": "eu-west-1"},
        {"AWS_STORAGE_BUCKET_NAME": "outputs.flixly.example", "AWS_S3_REGION_NAME": "us-east-2"},
        {"AWS_STORAGE_BUCKET_NAME": "flixly", "AWS_S3_ENDPOINT_URL": "https://minio.example.com:9000/"},
    ],
)
def test_pages_may_show_outputs_from_the_s3_address_their_presigned_links_point_at(storage):
    result = run_manage("shell", "-c", SHOWN_FROM, env={**STORAGE_ENV, **storage, "FLIXLY_VAR_DIR": "var/test"})
    assert result.returncode == 0, result.stderr
    origin, allowed = result.stdout.splitlines()[-1].split()
    assert allowed == "True", origin


def test_a_checkout_form_may_lead_to_stripe():
    form_action = settings.CONTENT_POLICY["form-action"]
    assert "https://checkout.stripe.com" in form_action  # Checkout and the portal: a redirect after a POST
    assert "https://billing.stripe.com" in form_action


def test_a_stripe_stand_in_server_is_allowed_as_a_form_target_too():
    code = "from django.conf import settings; print(settings.CONTENT_POLICY['form-action'])"
    result = run_manage(
        "shell", "-c", code, env={"STRIPE_API_BASE": "http://127.0.0.1:12111/", "FLIXLY_VAR_DIR": "var/test"}
    )
    assert "http://127.0.0.1:12111" in result.stdout, result.stderr


def test_in_development_the_policy_reports_and_django_s_debug_pages_keep_working():
    code = (
        "from django.conf import settings;"
        "print(settings.SECURE_CSP == {}, settings.SECURE_CSP_REPORT_ONLY == settings.CONTENT_POLICY)"
    )
    result = run_manage("shell", "-c", code, env={"DJANGO_DEBUG": "true", "FLIXLY_VAR_DIR": "var/test"})
    assert result.stdout.splitlines()[-1] == "True True", result.stderr


@pytest.mark.django_db
def test_in_development_the_api_docs_page_sends_only_its_own_policy(client, settings):
    settings.SECURE_CSP, settings.SECURE_CSP_REPORT_ONLY = {}, settings.CONTENT_POLICY  # as DEBUG does
    docs = client.get("/api/docs")
    assert "Content-Security-Policy-Report-Only" not in docs and "'unsafe-inline'" in docs["Content-Security-Policy"]
    assert "Content-Security-Policy-Report-Only" in client.get("/")
