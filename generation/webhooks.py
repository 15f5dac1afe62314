"""Signed webhooks (the Standard Webhooks scheme): the account's endpoint, its events, their deliveries.

An event becomes a WebhookDelivery row inside the transaction of the change it reports (a job finishing,
a refund), so the row exists exactly when that change committed; a Celery task sends it after the commit.
Every attempt checks the URL again (a fresh DNS answer, no redirects followed) and signs the stored body
with the account's current secret. An answer other than 2xx, none within 10 s, or a URL the guard refuses
(nothing sent; its DNS answer may change back) is tried again after 10 s, 60 s and 300 s; then the delivery
is failed. A beat task resends deliveries whose message was lost.
"""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from accounts.models import User
from flixly_site.errors import NotFound, RateLimited, ValidationFailed
from flixly_site.pagination import iso_utc
from generation.models import DeliveryStatus, Job, WebhookDelivery, WebhookEndpoint
from generation.outbound import OutboundError, UnsafeUrl, check_url, post_json
from generation.outputs import output_url

logger = logging.getLogger("flixly.webhooks")

SECRET_PREFIX = "whsec_"  # noqa: S105 (the scheme's prefix, not a secret)
RETRY_DELAYS = (10, 60, 300)  # seconds after the 1st, 2nd and 3rd failed attempt; the 4th failure is final
ATTEMPT_TIMEOUT = 10.0  # seconds for the whole exchange, from connecting to the answer's status line
LEASE = timedelta(seconds=60)  # longer than an attempt can last: the resend sweep leaves it alone meanwhile
CLOCK_SLACK = timedelta(seconds=2)  # a due time written by another host's clock may be a little ahead of ours
TEST_WAIT_SECONDS = ATTEMPT_TIMEOUT + 5  # the attempt, the lookup of the endpoint's name and a worker's pickup
LOST_AFTER = timedelta(seconds=30)  # a due delivery still pending this long after its time lost its message
MAX_URL_LENGTH = WebhookEndpoint._meta.get_field("url").max_length
PING = "ping"  # the test event
PING_ENDED = "Not retried: the endpoint's URL was changed. Send a new test event."
NO_ENDPOINT = "No webhook endpoint is set: PUT /api/v1/webhook with a url first."


# --- the endpoint ------------------------------------------------------------------------------------------
def _new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def checked_url(url: str, *, field: str) -> str:
    """A webhook URL the SSRF guard accepts (HTTPS, public addresses only), else 422 naming `field`."""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(details={field: [f"Must be at most {MAX_URL_LENGTH} characters."]})
    try:
        check_url(url, label="The webhook URL")
    except OutboundError as error:
        raise ValidationFailed(details={field: [str(error)]}) from None
    return url


def endpoint_set(*, user: User, url: str) -> WebhookEndpoint:
    """Set (or replace) the account's endpoint with a new signing secret, which the caller shows once.
    Events still pending for the old URL go to the new one: the user may have replaced it for a reason.
    A pending test event of the old URL ends there: it tests that URL, and names it in its body."""
    url = checked_url(url, field="url")
    with transaction.atomic():
        old = WebhookEndpoint.objects.select_for_update().filter(user=user).values_list("url", flat=True).first()
        endpoint, _ = WebhookEndpoint.objects.update_or_create(
            user=user, defaults={"url": url, "secret": _new_secret()}
        )
        if old is not None and old != url:
            # The last attempt's answer came from the old URL: the new one has not answered yet.
            pending = WebhookDelivery.objects.filter(user=user, status=DeliveryStatus.PENDING, url=old)
            pending.filter(event=PING).update(status=DeliveryStatus.FAILED, next_attempt_at=None, error=PING_ENDED)
            pending.update(url=url, status_code=None, latency_ms=None, error="")
    return endpoint


def endpoint_get(*, user: User) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(user=user).first()
    if endpoint is None:
        raise NotFound(NO_ENDPOINT)
    return endpoint


def endpoint_delete(*, user: User) -> None:
    """Remove the endpoint; deliveries still pending fail, as nothing is left to sign them with."""
    with transaction.atomic():
        if not WebhookEndpoint.objects.filter(user=user).delete()[0]:
            raise NotFound(NO_ENDPOINT)
        WebhookDelivery.objects.filter(user=user, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, next_attempt_at=None, error="The webhook endpoint was removed."
        )


def require_endpoint(*, user: User) -> None:
    """A per-job webhookUrl is signed with the account's secret, so the account needs an endpoint first."""
    if not WebhookEndpoint.objects.filter(user=user).exists():
        raise ValidationFailed(details={"webhookUrl": [f"{NO_ENDPOINT} Its secret signs per-job deliveries too."]})


# --- events ------------------------------------------------------------------------------------------------
def event_record(*, user_id: int, event: str, data: dict) -> None:
    """Record an account event for delivery in the caller's transaction; it is sent once that commits.
    Without an endpoint there is nothing to sign with, and nothing is recorded."""
    endpoint = _endpoint_url(user_id)
    if endpoint is not None:
        _record(user_id, event, data, endpoint, None)


def job_event_record(job: Job, event: str) -> None:
    """job.completed, job.failed or job.refunded, from the job as the caller's change left it; sent to the
    job's own webhookUrl when it has one. A job read with owner_endpoint_url() (the endpoint as it was
    then) costs no query to skip."""
    endpoint = job.endpoint_url if hasattr(job, "endpoint_url") else _endpoint_url(job.user_id)
    if endpoint is not None:
        fresh = Job.objects.get(pk=job.pk)
        _record(fresh.user_id, event, _job_event_data(fresh, event), fresh.webhook_url or endpoint, fresh)


def owner_endpoint_url() -> Subquery:
    """For annotating jobs as `endpoint_url`: their owner's endpoint URL, or None, read with the job."""
    return Subquery(WebhookEndpoint.objects.filter(user_id=OuterRef("user_id")).values("url")[:1])


def _endpoint_url(user_id: int) -> str | None:
    return WebhookEndpoint.objects.filter(user_id=user_id).values_list("url", flat=True).first()


def _record(user_id: int, event: str, data: dict, url: str, job: Job | None) -> WebhookDelivery:
    delivery = _delivery(user_id, event, data, url, job)
    transaction.on_commit(lambda: _publish(delivery.pk))
    return delivery


def _delivery(user_id: int, event: str, data: dict, url: str, job: Job | None) -> WebhookDelivery:
    now = timezone.now()
    body = json.dumps({"event": event, "timestamp": iso_utc(now), "data": data}, separators=(",", ":"))
    return WebhookDelivery.objects.create(
        user_id=user_id, job=job, event=event, url=url, body=body, next_attempt_at=now
    )


def _job_event_data(job: Job, event: str) -> dict:
    common = {"jobId": str(job.id), "type": job.type, "status": job.status, "createdAt": iso_utc(job.created_at)}
    if event == "job.completed":
        first = job.outputs[0] if job.outputs else None
        return {
            **common,
            "outputUrl": output_url(first["name"]) if first else None,
            "outputType": first["contentType"].partition("/")[0] if first else "text",
            "metadata": {"model": job.model_id, **job.metadata},
            "completedAt": iso_utc(job.completed_at),
        }
    if event == "job.failed":
        return {
            **common,
            "error": job.error,
            "creditsRefunded": job.credits_refunded,
            "failedAt": iso_utc(job.completed_at),
        }
    return {**common, "creditsRefunded": job.credits_refunded}  # job.refunded


def _publish(delivery_id, eta=None) -> None:
    from generation.tasks import deliver_webhook  # the tasks module imports this one

    try:
        deliver_webhook.apply_async(args=[str(delivery_id)], eta=eta)
    except Exception:  # the broker is down: the resend sweep sends the pending row later
        logger.warning("webhook delivery %s not queued; the resend sweep will send it", delivery_id, exc_info=True)


# --- delivering --------------------------------------------------------------------------------------------
def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the secret's base64-decoded bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery_attempt(*, delivery_id) -> WebhookDelivery | None:
    """Make the delivery's due attempt, once: a duplicate message, or one whose attempt another process has
    under way, finds nothing to claim. Returns the delivery as the attempt left it."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now + CLOCK_SLACK
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    endpoint = WebhookEndpoint.objects.filter(user_id=delivery.user_id).first()
    if endpoint is None:
        return _settle(delivery, None, None, "The webhook endpoint was removed.", final=True)
    status_code, latency_ms, error = _post(delivery, endpoint.secret)
    return _settle(delivery, status_code, latency_ms, error)


def _post(delivery: WebhookDelivery, secret: str) -> tuple[int | None, int | None, str]:
    """(status code, latency in ms, error); the latency runs from connecting to the answer's status line."""
    body, timestamp = delivery.body.encode(), int(time.time())
    headers = {
        "webhook-id": str(delivery.id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, str(delivery.id), timestamp, body),
        "User-Agent": "Flixly-Webhooks/1.0",
    }
    try:
        posted = post_json(delivery.url, body, headers=headers, timeout=ATTEMPT_TIMEOUT, label="The webhook URL")
    except UnsafeUrl as refused:
        # The guard refused before connecting. Retried like any failure (the URL's DNS answer may change back),
        # but the reason must say we sent nothing, so nobody looks for the request in the endpoint's logs.
        return None, None, _not_sent(refused)
    except OutboundError as error:
        return None, None, str(error)
    except Exception:  # a bug or an odd answer must still settle the attempt, never leave it claimed
        logger.exception("webhook delivery %s: unexpected error", delivery.pk)
        return None, None, "The delivery failed on our side; it will be retried."
    latency, status = round(posted.seconds * 1000), posted.status
    if 300 <= status < 400:
        return status, latency, f"HTTP {status}: redirects are not followed."
    return status, latency, "" if 200 <= status < 300 else f"HTTP {status}."


def _not_sent(refused: UnsafeUrl) -> str:
    reason = str(refused)
    return f"Not sent: {reason[:1].lower()}{reason[1:]}"


def _settle(
    delivery: WebhookDelivery, status_code: int | None, latency_ms: int | None, error: str, *, final: bool = False
) -> WebhookDelivery:
    """Record the attempt's outcome, unless the delivery moved on meanwhile (its endpoint removed, or a
    later attempt claimed it after this one overran its lease)."""
    now = timezone.now()
    delivery.status_code, delivery.latency_ms, delivery.error = status_code, latency_ms, error[:200]
    if not error:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, now, None
    elif final or delivery.attempts > len(RETRY_DELAYS):
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=RETRY_DELAYS[delivery.attempts - 1])
    fields = ("status", "status_code", "latency_ms", "error", "next_attempt_at", "delivered_at")
    settled = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts
    ).update(**{name: getattr(delivery, name) for name in fields})
    if not settled:
        delivery.refresh_from_db()
        return delivery
    if delivery.status == DeliveryStatus.PENDING:
        _publish(delivery.pk, eta=delivery.next_attempt_at)
    logger.info(
        "webhook delivery=%s event=%s attempt=%s status=%s code=%s latency_ms=%s error=%s",
        delivery.pk,
        delivery.event,
        delivery.attempts,
        delivery.status,
        status_code,
        latency_ms,
        json.dumps(delivery.error) if delivery.error else "-",  # quoted: one line whatever the reason says
    )
    return delivery


def endpoint_test(*, user: User) -> WebhookDelivery:
    """Send a signed `ping` to the account's endpoint and return how its first attempt went, waiting for it
    at most TEST_WAIT_SECONDS. A worker makes the attempt, under the same limits as every delivery; a failed
    one is retried like any other. One test at a time per account: each holds a web thread while it waits."""
    endpoint = endpoint_get(user=user)
    in_flight = f"webhook-test:{user.pk}"
    if not cache.add(in_flight, 1, TEST_WAIT_SECONDS + 5):  # expires on its own if this process dies
        raise RateLimited(
            "A test event for your endpoint is still on its way; send the next one when it has arrived.",
            headers={"Retry-After": "5"},
        )
    try:
        return _ping_and_wait(user.pk, endpoint.url)
    finally:
        cache.delete(in_flight)


def _ping_and_wait(user_id: int, url: str) -> WebhookDelivery:
    deadline = time.monotonic() + TEST_WAIT_SECONDS  # from the start: the in-flight mark outlives the wait
    delivery = _delivery(user_id, PING, {"url": url, "message": "A test event from Flixly."}, url, None)
    _publish(delivery.pk)
    delivery.refresh_from_db()
    while delivery.status == DeliveryStatus.PENDING and not delivery.error and time.monotonic() < deadline:
        time.sleep(0.2)
        delivery.refresh_from_db()
    return delivery


def deliveries_for(*, user: User) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(user=user)


def deliveries_resend(*, now=None) -> int:
    """Beat: queue again the due deliveries whose message was lost (a broker restart, a refused publish)."""
    now = now or timezone.now()
    lost = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=now - LOST_AFTER)
    ids = list(lost.values_list("pk", flat=True)[:500])
    # Due again only after another LOST_AFTER: a backlog nobody consumes is not queued again every sweep.
    # (Through `lost` again: an attempt that settled meanwhile keeps the retry time it set.)
    lost.filter(pk__in=ids).update(next_attempt_at=now)
    if ids:
        queue = settings.FLIXLY_WEBHOOK_QUEUE
        logger.warning("%s webhook deliveries were overdue: is a worker consuming the '%s' queue?", len(ids), queue)
    for delivery_id in ids:
        _publish(delivery_id)
    return len(ids)


def delivery_answer(delivery: WebhookDelivery) -> str:
    """ "HTTP 500 in 12 ms" after an answer; "" without one, where the error alone says what happened (not
    reached, timed out, or not sent at all because the SSRF guard refused the URL)."""
    if delivery.status_code is None:
        return ""
    latency = "" if delivery.latency_ms is None else f" in {delivery.latency_ms} ms"
    return f"HTTP {delivery.status_code}{latency}"
