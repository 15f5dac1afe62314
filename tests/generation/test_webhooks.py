"""Webhooks: the account's endpoint, signed deliveries checked with the Standard Webhooks reference library,
retries, job events and per-job URLs. The receiver is a loopback server (conftest: the SSRF guard is relaxed)."""

import json
import logging
import socket
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from generation.models import DeliveryStatus, Job, JobStatus, WebhookDelivery
from generation.services import job_claim, job_complete, job_fail
from generation.webhooks import deliveries_resend, delivery_attempt, endpoint_set
from tests.generation.conftest import generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(user, receiver):
    return endpoint_set(user=user, url=receiver.url)


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict:
    return Webhook(secret).verify(body, headers)  # raises unless signed as the scheme says


def put_endpoint(api, url: str):
    return api.put("/api/v1/webhook", {"url": url}, content_type="application/json")


# --- the endpoint API --------------------------------------------------------------------------------------
def test_put_shows_the_secret_once_and_get_never(api, receiver):
    response = put_endpoint(api, receiver.url)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["url"] == receiver.url and data["secret"].startswith("whsec_")
    shown = api.get("/api/v1/webhook").json()["data"]
    assert shown["url"] == receiver.url and "secret" not in shown


def test_put_again_replaces_the_url_and_the_secret(api, receiver):
    first = put_endpoint(api, receiver.url).json()["data"]["secret"]
    second = put_endpoint(api, receiver.url + "/v2").json()["data"]
    assert second["secret"] != first and second["url"].endswith("/v2")


def test_delete_removes_the_endpoint(api, endpoint):
    assert api.delete("/api/v1/webhook").status_code == 200
    response = api.get("/api/v1/webhook")
    assert response.status_code == 404
    assert "PUT /api/v1/webhook" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.215.14/hook", "must use https"),
        ("https://127.0.0.1/hook", "private address"),
        ("https://169.254.169.254/latest", "private address"),
        ("not a url", "not a valid URL"),
    ],
)
def test_unsafe_urls_are_refused_when_set(api, url, message):
    response = put_endpoint(api, url)
    assert response.status_code == 422
    assert message in response.json()["error"]["details"]["url"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"url": 5}, "url"), ({"url": "https://example.com/h", "secret": "x"}, "secret"), ([1], "body"), (None, "body")],
)
def test_a_put_body_of_the_wrong_shape_is_a_422_naming_the_field(api, body, field):
    response = api.put("/api/v1/webhook", json.dumps(body), content_type="application/json")
    assert response.status_code == 422
    assert field in response.json()["error"]["details"]


def test_a_url_longer_than_the_column_is_a_422_not_a_database_error(user, receiver):
    from flixly_site.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as raised:
        endpoint_set(user=user, url=receiver.url + "?" + "x" * 2048)
    assert "at most 2048" in raised.value.details["url"][0]


def test_staff_see_endpoints_and_deliveries_but_never_the_secret(admin_client, user, endpoint):
    _ping(user)
    page = admin_client.get(f"/admin/generation/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.url in page and endpoint.secret not in page
    assert admin_client.get("/admin/generation/webhookdelivery/").status_code == 200


def test_the_webhook_api_needs_its_scope(client, user, make_key):
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {make_key(user, scopes=['generate'])}"
    response = client.get("/api/v1/webhook")
    assert response.status_code == 403
    assert "webhooks:manage" in response.json()["error"]["message"]


# --- delivering --------------------------------------------------------------------------------------------
def test_test_sends_a_signed_ping(api, receiver):
    secret = put_endpoint(api, receiver.url).json()["data"]["secret"]
    response = api.post("/api/v1/webhook/test")
    data = response.json()["data"]
    assert (response.status_code, data["event"], data["status"], data["statusCode"]) == (200, "ping", "succeeded", 200)
    assert data["latencyMs"] >= 0 and data["nextRetryAt"] is None
    headers, body = receiver.posts()[0].headers, receiver.posts()[0].body
    assert verified(secret, headers, body)["event"] == "ping"
    assert headers["webhook-id"] == data["id"] and headers["content-type"] == "application/json"


def test_one_test_at_a_time_per_account_and_the_next_once_it_has_arrived(api, user, receiver):
    from django.core.cache import cache

    put_endpoint(api, receiver.url)
    cache.add(f"webhook-test:{user.pk}", 1, 30)  # a test of this account is still waiting for its answer
    refused = api.post("/api/v1/webhook/test")
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limit_exceeded")
    assert refused["Retry-After"] == "5" and "still on its way" in refused.json()["error"]["message"]
    assert receiver.posts() == []
    cache.delete(f"webhook-test:{user.pk}")  # that one arrived
    assert [api.post("/api/v1/webhook/test").status_code for _ in range(2)] == [200, 200]
    assert len(receiver.posts()) == 2


def test_a_test_that_fails_midway_lets_the_next_one_through(api, receiver, monkeypatch):
    from generation import webhooks

    put_endpoint(api, receiver.url)
    monkeypatch.setattr(webhooks, "_publish", lambda delivery_id: 1 / 0)
    assert api.post("/api/v1/webhook/test").status_code == 500
    monkeypatch.undo()
    assert api.post("/api/v1/webhook/test").status_code == 200


def test_a_tampered_body_fails_verification(api, receiver):
    secret = put_endpoint(api, receiver.url).json()["data"]["secret"]
    api.post("/api/v1/webhook/test")
    headers, body = receiver.posts()[0].headers, receiver.posts()[0].body
    with pytest.raises(WebhookVerificationError):
        verified(secret, headers, body.replace(b"ping", b"pong"))


def test_failures_are_retried_after_10_60_300_seconds_then_failed(user, endpoint, receiver):
    receiver.status = 500
    attempted_at = timezone.now()
    delivery = _ping(user)
    waits = []
    for _ in range(3):
        assert delivery.status == DeliveryStatus.PENDING and delivery.error == "HTTP 500."
        waits.append(round((delivery.next_attempt_at - attempted_at).total_seconds()))
        attempted_at = delivery.next_attempt_at + timedelta(seconds=1)
        with time_machine.travel(attempted_at, tick=False):
            delivery = delivery_attempt(delivery_id=delivery.pk)
    assert waits == [10, 60, 300]  # each counted from the failed attempt before it
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.FAILED, 4, None)
    assert len(receiver.posts()) == 4
    assert len({post.headers["webhook-id"] for post in receiver.posts()}) == 1  # one message, four attempts


def test_an_attempt_is_made_once_however_often_its_message_arrives(user, endpoint, receiver):
    delivery = _ping(user)
    assert delivery_attempt(delivery_id=delivery.pk) is None  # succeeded already
    assert len(receiver.posts()) == 1


def test_a_redirect_is_not_followed(user, endpoint, receiver):
    receiver.status, receiver.headers = 302, {"Location": "http://169.254.169.254/"}
    delivery = _ping(user)
    assert delivery.status == DeliveryStatus.PENDING and "redirects are not followed" in delivery.error
    assert len(receiver.posts()) == 1


REFUSED = "Not sent: the webhook URL resolves to a private address, which is not allowed."


@pytest.fixture
def resolves_privately(settings):
    """As if the endpoint's DNS answer changed to a private address since the URL was set."""
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = False


@pytest.fixture
def connections(monkeypatch) -> list:
    """Every TCP connection httpx opens from here on (its sync backend dials with socket.create_connection)."""
    opened: list = []
    real = socket.create_connection
    monkeypatch.setattr(
        socket, "create_connection", lambda *args, **kwargs: opened.append(args) or real(*args, **kwargs)
    )
    return opened


def test_a_url_that_now_resolves_privately_is_refused_at_delivery_without_connecting(
    user, endpoint, receiver, resolves_privately, connections
):
    delivery = _ping(user)
    assert (delivery.status, delivery.status_code, delivery.error) == (DeliveryStatus.PENDING, None, REFUSED)
    assert connections == [] and receiver.posts() == []


def test_a_refused_delivery_is_retried_and_sent_once_the_url_resolves_publicly_again(
    user, endpoint, receiver, resolves_privately, settings
):
    delivery = _ping(user)
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = True  # DNS changed back: the retry schedule gives it the chance
    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=False):
        delivery = delivery_attempt(delivery_id=delivery.pk)
    assert (delivery.status, delivery.attempts, delivery.error) == (DeliveryStatus.SUCCEEDED, 2, "")
    assert len(receiver.posts()) == 1


def test_the_delivery_log_says_why_a_delivery_was_refused(api, user, endpoint, resolves_privately):
    _ping(user)
    [listed] = api.get("/api/v1/webhook/deliveries").json()["data"]
    assert (listed["status"], listed["statusCode"], listed["error"]) == ("pending", None, REFUSED)
    assert listed["nextRetryAt"] is not None


def test_staff_see_why_a_delivery_was_refused(admin_client, user, endpoint, resolves_privately):
    delivery = _ping(user)
    page = admin_client.get(f"/admin/generation/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert REFUSED in page


def test_a_token_in_the_url_never_reaches_the_logs(api, receiver, caplog):
    put_endpoint(api, receiver.url + "?token=s3cret-token")
    caplog.set_level("DEBUG")
    api.post("/api/v1/webhook/test")
    assert receiver.posts() and "s3cret-token" not in caplog.text


def test_removing_the_endpoint_fails_pending_deliveries(api, user, endpoint, receiver):
    receiver.status = 503
    delivery = _ping(user)
    api.delete("/api/v1/webhook")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error) == (DeliveryStatus.FAILED, "The webhook endpoint was removed.")


def test_the_sweep_resends_a_delivery_whose_message_was_lost(user, endpoint, receiver):
    receiver.status = 500
    delivery = _ping(user)
    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=31)):
        assert deliveries_resend() == 1  # eager Celery: the attempt runs here
    assert len(receiver.posts()) == 2


def test_a_delivery_nobody_consumes_is_queued_again_only_every_30_seconds_and_logged(
    user, endpoint, receiver, monkeypatch, caplog
):
    from generation import webhooks

    receiver.status = 500
    delivery = _ping(user)
    published = []
    monkeypatch.setattr(webhooks, "_publish", published.append)  # no worker takes the webhooks queue
    start = delivery.next_attempt_at + timedelta(seconds=31)
    with time_machine.travel(start):
        assert deliveries_resend() == 1
    with time_machine.travel(start + timedelta(seconds=29)):
        assert deliveries_resend() == 0  # queued 29 s ago: not lost yet
    with time_machine.travel(start + timedelta(seconds=31)):
        assert deliveries_resend() == 1
    assert published == [delivery.pk, delivery.pk]
    assert "is a worker consuming the 'webhooks' queue?" in caplog.text


def test_deliveries_are_listed_newest_first_for_their_account_only(api, user, endpoint, django_user_model):
    other_user = django_user_model.objects.create_user(email="bob@example.com", password="another horse battery")
    endpoint_set(user=other_user, url=endpoint.url)
    _ping(other_user)
    first, second = _ping(user), _ping(user)
    data = api.get("/api/v1/webhook/deliveries?limit=1").json()
    assert [d["id"] for d in data["data"]] == [str(second.pk)] and data["nextCursor"]
    rest = api.get(f"/api/v1/webhook/deliveries?cursor={data['nextCursor']}").json()
    assert [d["id"] for d in rest["data"]] == [str(first.pk)] and rest["nextCursor"] is None


def _ping(user) -> WebhookDelivery:
    from generation.webhooks import endpoint_test

    return endpoint_test(user=user)


# --- job events --------------------------------------------------------------------------------------------
@pytest.fixture
def queued_job(api, funded, no_worker) -> Job:
    """A job left queued; Celery then runs tasks inline again, so deliveries go out at once."""
    from flixly_site.celery import app

    job = Job.objects.get(pk=generate(api).json()["data"]["jobId"])
    app.conf.task_always_eager = True
    return job


def test_a_completed_job_is_delivered(queued_job, endpoint, receiver, django_capture_on_commit_callbacks):
    job = job_claim(job_id=queued_job.pk)
    outputs = [{"name": "outputs/x.png", "contentType": "image/png", "width": 8, "height": 8, "bytes": 10}]
    with django_capture_on_commit_callbacks(execute=True):
        job_complete(job=job, outputs=outputs, text="", usage={}, metadata={"seed": 7})
    headers, body = receiver.posts()[0].headers, receiver.posts()[0].body
    event = verified(endpoint.secret, headers, body)
    assert event["event"] == "job.completed"
    data = event["data"]
    assert (data["jobId"], data["status"], data["outputType"]) == (str(job.pk), "completed", "image")
    assert data["metadata"]["model"] == "local-image" and data["metadata"]["seed"] == 7
    assert data["outputUrl"].startswith("http") and data["completedAt"].endswith("Z")


def test_a_failed_job_reports_its_failure_and_its_refund(
    queued_job, endpoint, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job_fail(job_id=queued_job.pk, detail="upstream secret detail")
    events = {event["event"]: event["data"] for event in receiver.events()}
    assert set(events) == {"job.failed", "job.refunded"}
    recorded = WebhookDelivery.objects.order_by("created_at", "id").values_list("event", flat=True)
    assert list(recorded) == ["job.failed", "job.refunded"]  # the failure first, then what it caused
    failed = events["job.failed"]
    assert failed["creditsRefunded"] == queued_job.credits_charged > 0
    assert failed["error"] == "The generation failed. Your credits were refunded."
    assert "secret detail" not in json.dumps(events)


def test_no_endpoint_means_no_deliveries(queued_job, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job_fail(job_id=queued_job.pk, detail="x")
    assert not WebhookDelivery.objects.exists() and receiver.posts() == []


def test_a_per_job_webhook_url_gets_that_jobs_events(api, funded, endpoint, receiver, no_worker):
    job_url = receiver.url + "/job"
    response = generate(api, {"webhookUrl": job_url})
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["data"]["jobId"])
    assert job.webhook_url == job_url
    job_fail(job_id=job.pk, detail="x")
    assert set(WebhookDelivery.objects.values_list("url", flat=True)) == {job_url}


def test_a_per_job_webhook_url_needs_an_endpoint_first(api, funded, receiver):
    response = generate(api, {"webhookUrl": receiver.url})
    assert response.status_code == 422
    assert "PUT /api/v1/webhook" in response.json()["error"]["details"]["webhookUrl"][0]
    assert not Job.objects.exists()


def test_a_private_per_job_webhook_url_is_refused(api, funded, endpoint, settings):
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = False
    response = generate(api, {"webhookUrl": "https://10.0.0.8/hook"})
    assert response.status_code == 422
    assert "private address" in response.json()["error"]["details"]["webhookUrl"][0]
    assert JobStatus.QUEUED not in Job.objects.values_list("status", flat=True)


# --- account events ----------------------------------------------------------------------------------------
def test_a_rolled_key_is_reported(api, user, endpoint, receiver, django_capture_on_commit_callbacks):
    key_id = api.get("/api/v1/keys").json()["data"][0]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        rolled = api.post(f"/api/v1/keys/{key_id}/roll", {"graceHours": 2}, content_type="application/json")
    event = receiver.events()[0]
    assert event["event"] == "key.rolled"
    assert event["data"]["keyId"] == key_id and event["data"]["lastFour"] == rolled.json()["data"]["key"][-4:]
    assert event["data"]["oldKeyValidUntil"].endswith("Z")
    assert rolled.json()["data"]["key"] not in json.dumps(event)  # the new secret itself never travels


def test_a_key_about_to_expire_is_reported_once(user, make_key, endpoint, receiver, django_capture_on_commit_callbacks):
    from accounts.services import apikey_send_expiry_reminders

    make_key(user, expires_in_days=30)
    with time_machine.travel(timezone.now() + timedelta(days=24)), django_capture_on_commit_callbacks(execute=True):
        apikey_send_expiry_reminders()
        apikey_send_expiry_reminders()
    assert [event["event"] for event in receiver.events()] == ["key.expiring"]


def test_a_balance_crossing_the_alert_threshold_is_reported_once(
    funded, endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    from django.db import transaction

    from billing.services import debit_prepare

    settings.FLIXLY_LOW_BALANCE_THRESHOLD = 50
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        debit_prepare(user_id=funded.pk, amount=60, idempotency_key="d1").run()
        debit_prepare(user_id=funded.pk, amount=10, idempotency_key="d2").run()
    assert [(e["event"], e["data"]) for e in receiver.events()] == [("credits.low", {"credits": 40, "threshold": 50})]


# --- attempts that overlap or overrun ----------------------------------------------------------------------
def test_a_stale_attempt_never_overwrites_a_later_one(user, endpoint, receiver):
    from generation import webhooks

    receiver.status = 500
    stale = _ping(user)  # attempt 1 failed; pretend its worker is still busy with it
    receiver.status = 200
    with time_machine.travel(stale.next_attempt_at + timedelta(seconds=1)):
        assert delivery_attempt(delivery_id=stale.pk).status == DeliveryStatus.SUCCEEDED
    assert webhooks._settle(stale, 500, 5, "HTTP 500.").status == DeliveryStatus.SUCCEEDED
    assert WebhookDelivery.objects.get(pk=stale.pk).status == DeliveryStatus.SUCCEEDED


def test_an_attempt_that_outlasts_its_timeout_counts_as_failed_and_is_retried(user, endpoint, receiver, monkeypatch):
    monkeypatch.setattr("generation.webhooks.ATTEMPT_TIMEOUT", 0.3)
    receiver.delay_seconds = 2
    started = time.monotonic()
    delivery = _ping(user)
    assert time.monotonic() - started < 1.5
    assert delivery.status == DeliveryStatus.PENDING and "did not answer within 0.3 seconds" in delivery.error
    assert 9 <= (delivery.next_attempt_at - timezone.now()).total_seconds() <= 10


def test_a_failed_attempt_is_logged_with_its_reason(user, endpoint, receiver, caplog):
    caplog.set_level(logging.INFO, logger="flixly.webhooks")
    receiver.status = 503
    _ping(user)
    assert "status=pending code=503" in caplog.text and 'error="HTTP 503."' in caplog.text


def test_replacing_the_url_sends_pending_events_to_the_new_one(api, user, endpoint, receiver):
    delivery = WebhookDelivery.objects.create(
        user=user,
        event="job.completed",
        url=endpoint.url,
        body="{}",
        attempts=1,
        status_code=500,
        latency_ms=5,
        error="HTTP 500.",
        next_attempt_at=timezone.now(),
    )
    put_endpoint(api, receiver.url + "/new")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.url) == (DeliveryStatus.PENDING, receiver.url + "/new")
    # The old URL's answer is not shown as the new one's (it read "Failed 500" beside a URL that never failed).
    assert (delivery.status_code, delivery.latency_ms, delivery.error) == (None, None, "")


def test_replacing_the_url_ends_a_pending_test_event_of_the_old_one(api, user, endpoint, receiver):
    # A ping tests one URL and names it in its body: sent on to the new URL it read as that URL's success.
    receiver.status = 500
    ping = _ping(user)
    put_endpoint(api, receiver.url + "/new")
    ping.refresh_from_db()
    assert (ping.status, ping.url, ping.next_attempt_at) == (DeliveryStatus.FAILED, endpoint.url, None)
    assert ping.error == "Not retried: the endpoint's URL was changed. Send a new test event."


def test_a_due_time_slightly_ahead_of_this_hosts_clock_is_still_due(user, endpoint, receiver):
    delivery = WebhookDelivery.objects.create(
        user=user, event="ping", url=endpoint.url, body="{}", next_attempt_at=timezone.now() + timedelta(seconds=1)
    )
    assert delivery_attempt(delivery_id=delivery.pk).status == DeliveryStatus.SUCCEEDED
