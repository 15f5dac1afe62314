import json
import logging
import time
from http import HTTPStatus

import pytest

from billing.models import EntryKind, LedgerEntry
from billing.services import wallet_balance
from generation.models import Job, JobEvent, JobStatus
from tests.generation.conftest import generate

pytestmark = pytest.mark.django_db


def test_a_job_is_charged_and_accepted(api, funded):
    response = generate(api)
    assert response.status_code == HTTPStatus.ACCEPTED
    data = response.json()["data"]
    assert set(data) == {"jobId", "status", "model", "type", "creditsCharged", "createdAt"}
    assert data["creditsCharged"] == 1
    assert response["X-Credit-Balance"] == "99"
    entry = LedgerEntry.objects.get(kind=EntryKind.DEBIT)
    assert (entry.amount, entry.reference_id, entry.category) == (-1, data["jobId"], "images")


def test_the_seed_quick_start_request_works(api, funded):
    body = {"model": "flux-dev", "prompt": "A cat wearing a top hat, oil painting", "type": "TEXT_TO_IMAGE"}
    response = api.post("/api/v1/generate", body, content_type="application/json")
    assert response.status_code == HTTPStatus.ACCEPTED
    job = api.get(f"/api/v1/jobs/{response.json()['data']['jobId']}").json()["data"]
    assert job["status"] == "completed"
    assert job["metadata"]["localFallback"] is True
    assert job["outputs"][0]["contentType"] == "image/png"


def test_published_video_prices_match_the_seed(api, user):
    from billing.services import wallet_adjust

    wallet_adjust(user_id=user.pk, amount=1000, reason="funds")
    for model, price in (("seedance-2.0", 12), ("kling-3.0", 15), ("veo-3.1", 18)):
        body = {"model": model, "type": "TEXT_TO_VIDEO", "prompt": "slow pan", "resolution": "720p"}
        quote = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json").json()["data"]
        assert quote["creditsCharged"] == price, model


def test_a_dry_run_quotes_without_charging(api, funded):
    response = api.post(
        "/api/v1/generate?dryRun=true",
        {"model": "flux-dev", "type": "TEXT_TO_IMAGE", "prompt": "x", "width": 2048, "height": 2048},
        content_type="application/json",
    )
    data = response.json()["data"]
    assert data["dryRun"] is True
    assert data["creditsCharged"] == 8
    assert wallet_balance(user_id=funded.pk) == 100
    assert not Job.objects.exists()


@pytest.mark.parametrize("url", ["https://169.254.169.254/x.png", "http://127.0.0.1/x.png", "https://10.0.0.7/x.png"])
def test_a_dry_run_refuses_an_image_url_the_submit_would_refuse(api, funded, url):
    body = {"model": "flux-kontext-max", "type": "IMAGE_TO_IMAGE", "prompt": "x", "imageUrl": url}
    for path in ("/api/v1/generate?dryRun=true", "/api/v1/generate"):
        response = api.post(path, body, content_type="application/json")
        assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, path
        assert "imageUrl" in response.json()["error"]["details"]
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_dry_run_says_whether_the_keys_monthly_cap_leaves_room_for_the_price(
    client, api, funded, make_key, no_worker
):
    body = {"model": "flux-dev", "type": "TEXT_TO_IMAGE", "prompt": "x"}  # 3 credits
    capped = {"Authorization": f"Bearer {make_key(funded, monthly_credit_cap=5)}"}
    quote = client.post("/api/v1/generate?dryRun=true", body, content_type="application/json", headers=capped)
    assert quote.json()["data"]["withinMonthlyCap"] is True
    assert client.post("/api/v1/generate", body, content_type="application/json", headers=capped).status_code == 202
    quote = client.post("/api/v1/generate?dryRun=true", body, content_type="application/json", headers=capped)
    assert quote.json()["data"]["withinMonthlyCap"] is False  # 3 + 3 is past 5: the submit would be refused
    assert client.post("/api/v1/generate", body, content_type="application/json", headers=capped).status_code == 402
    uncapped = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json").json()["data"]
    assert uncapped["withinMonthlyCap"] is None  # no cap on this key


def test_a_dry_run_says_whether_the_balance_covers_the_price(api, user):
    from billing.services import wallet_adjust

    quote = api.post(
        "/api/v1/generate?dryRun=true",
        {"model": "flux-dev", "type": "TEXT_TO_IMAGE", "prompt": "x"},
        content_type="application/json",
    ).json()["data"]
    assert (quote["valid"], quote["sufficientCredits"]) == (True, False)
    wallet_adjust(user_id=user.pk, amount=quote["creditsCharged"], reason="funds")
    quote = api.post(
        "/api/v1/generate?dryRun=true",
        {"model": "flux-dev", "type": "TEXT_TO_IMAGE", "prompt": "x"},
        content_type="application/json",
    ).json()["data"]
    assert quote["sufficientCredits"] is True


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt", 123),
        ("prompt", ["a"]),
        ("width", "512"),
        ("width", 512.5),
        ("seed", True),
        ("model", 7),
        ("duration", "5"),
        ("style", {"a": 1}),
    ],
)
def test_a_json_field_of_the_wrong_type_is_a_422_not_coerced(api, funded, field, value):
    response = generate(api, {"model": "flux-dev", "type": "TEXT_TO_IMAGE", field: value})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert list(response.json()["error"]["details"]) == [field]
    assert wallet_balance(user_id=funded.pk) == 100


def test_json_numbers_may_be_written_either_way_where_the_field_takes_fractions(api, funded):
    body = {"model": "kokoro", "type": "TEXT_TO_SPEECH", "prompt": "hello", "speed": 1}
    assert api.post("/api/v1/generate?dryRun=true", body, content_type="application/json").status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("dryRun=maybe", "dryRun"),
        ("dryRun=t", "dryRun"),
        ("dryRun=2", "dryRun"),
        ("dryRun=true&dryRun=false", "dryRun"),
        ("dryrun=true", "dryrun"),
        ("dry_run=1", "dry_run"),
        ("dryRun=true&dryrun=true", "dryrun"),
    ],
)
def test_a_dry_run_that_cannot_be_read_is_a_422_and_charges_nothing(api, funded, query, field):
    response = api.post(
        f"/api/v1/generate?{query}",
        {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "x"},
        content_type="application/json",
    )
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert field in response.json()["error"]["details"]
    assert wallet_balance(user_id=funded.pk) == 100 and not Job.objects.exists()


@pytest.mark.parametrize(
    ("value", "quote"), [("", True), ("on", True), ("TRUE", True), ("false", False), ("off", False)]
)
def test_dry_run_spellings(api, funded, no_worker, value, quote):
    body = {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "x"}
    response = api.post(f"/api/v1/generate?dryRun={value}", body, content_type="application/json")
    assert response.status_code == (HTTPStatus.OK if quote else HTTPStatus.ACCEPTED)
    assert Job.objects.exists() is not quote


def test_insufficient_credits_is_402_naming_the_price(api, user):
    response = generate(api)
    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    error = response.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert "You need at least 1 credit for this" in error["message"]
    assert not Job.objects.exists() and not JobEvent.objects.exists() and not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "no-such-model"}, "model"),
        ({"type": "TEXT_TO_VIDEO"}, "type"),
        ({"type": "NOT_A_TYPE"}, "type"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"model": "local-chat", "type": "CHAT", "prompt": "x" * 2001}, "prompt"),
        ({"model": "local-chat", "type": "CHAT", "messages": [{"role": "user", "content": "a\x00b"}]}, "messages"),
        ({"model": "local-chat", "type": "CHAT", "messages": [{"role": "user", "content": "  "}]}, "messages"),
        (
            {"model": "local-chat", "type": "CHAT", "prompt": "a", "messages": [{"role": "user", "content": "b"}]},
            "prompt",
        ),
        ({"model": "local-chat", "type": "CHAT", "prompt": "a", "seed": 5}, "seed"),
        ({"model": "local-chat", "type": "CHAT", "prompt": "a", "negativePrompt": "b"}, "negativePrompt"),
        ({"width": 100}, "width"),
        ({"width": 4096}, "width"),
        ({"steps": 0}, "steps"),
        ({"seed": -1}, "seed"),
        ({"duration": 5}, "duration"),
        ({"voice": "nobody"}, "voice"),
        ({"model": "local-speech", "type": "TEXT_TO_SPEECH", "voice": "alloy"}, "voice"),  # OpenAI's: /openai only
        ({"colour": "red"}, "colour"),
        ({"imageUrl": "https://example.com/a.png"}, "imageUrl"),
        ({"webhookUrl": "https://example.com/hook"}, "webhookUrl"),
    ],
)
def test_bad_fields_are_a_422_naming_the_field(api, funded, body, field):
    response = generate(api, body)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert field in response.json()["error"]["details"]
    assert wallet_balance(user_id=funded.pk) == 100


@pytest.mark.parametrize("db_pass", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "local-chat", "type": "CHAT", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
        b'{"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "a\\udc00b"}',
    ],
)
def test_a_lone_surrogate_anywhere_in_the_body_is_a_422_and_charges_nothing(api, funded, db_pass, body):
    # PostgreSQL refuses such text in a JSON column: this was a 500 for a chat message's content.
    response = api.post("/api/v1/generate", data=body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "body" in response.json()["error"]["details"]
    assert wallet_balance(user_id=funded.pk) == 100 and not Job.objects.exists()


def _video_cases():
    import json
    from pathlib import Path

    models = json.loads(Path("generation/catalog.json").read_text())["models"]
    for model in models:
        spec = model["params"].get("duration")
        if "TEXT_TO_VIDEO" in model["types"] and spec:
            too_long = (max(spec["allowed"]) if "allowed" in spec else spec["max"]) + 1
            yield pytest.param(model["id"], too_long, id=model["id"])


@pytest.mark.parametrize(("model", "duration"), list(_video_cases()))
def test_every_video_model_refuses_a_duration_past_its_maximum(api, funded, model, duration):
    body = {"model": model, "type": "TEXT_TO_VIDEO", "prompt": "x", "duration": duration}
    response = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "duration" in response.json()["error"]["details"]


def test_a_body_that_is_not_an_object_is_a_422(api, funded):
    response = api.post("/api/v1/generate", "[1, 2]", content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_the_same_idempotency_key_and_body_returns_the_first_job_and_charges_once(api, funded, no_worker):
    first = generate(api, **{"Idempotency-Key": "abc-123"}).json()["data"]
    again = generate(api, **{"Idempotency-Key": "abc-123"})
    assert again.json()["data"]["jobId"] == first["jobId"]
    assert Job.objects.count() == 1
    assert wallet_balance(user_id=funded.pk) == 99


def test_a_replay_answers_like_the_first_request_even_after_the_job_finished(api, funded):
    first = generate(api, **{"Idempotency-Key": "abc-123"})  # eager: the job finishes inline
    assert Job.objects.get().status == JobStatus.COMPLETED
    again = generate(api, **{"Idempotency-Key": "abc-123"})
    assert (first.status_code, again.status_code) == (HTTPStatus.ACCEPTED, HTTPStatus.ACCEPTED)
    assert again.json()["data"]["jobId"] == first.json()["data"]["jobId"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    waited = generate(api, **{"Idempotency-Key": "abc-123", "Prefer": "wait=5"})
    assert waited.status_code == HTTPStatus.OK and waited.json()["data"]["outputUrl"]


@pytest.mark.parametrize("prefer", ["wait=" + "9" * 5000, "wait=\u00b2", "wait=99999999999999999999"])
def test_an_absurd_prefer_wait_is_read_as_the_longest_wait_or_ignored_never_a_charged_500(api, funded, prefer):
    response = generate(api, Prefer=prefer)
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.ACCEPTED)
    assert Job.objects.count() == 1 and wallet_balance(user_id=funded.pk) == 99


def test_prefer_wait_is_not_honoured_past_the_plans_parallel_tasks(api, funded, no_worker):
    from accounts.ratelimit import account_bucket, wait_slot

    held = wait_slot(bucket=account_bucket(funded.pk), limit=funded.plan.parallel_tasks)  # another request waiting
    started = time.monotonic()
    response = generate(api, Prefer="wait=5")
    held.release()
    assert response.status_code == HTTPStatus.ACCEPTED
    assert time.monotonic() - started < 2
    assert Job.objects.count() == 1 and wallet_balance(user_id=funded.pk) == 99


def test_one_422_names_every_bad_setting_both_past_a_global_bound_and_outside_the_models_range(api, funded):
    body = {
        "model": "local-speech",
        "type": "TEXT_TO_SPEECH",
        "prompt": "hi",
        "speed": 5,
        "voice": "x",
        "language": "y",
    }
    response = generate(api, body)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert set(response.json()["error"]["details"]) == {"speed", "voice", "language"}
    assert not Job.objects.exists()


def test_a_live_key_never_gets_the_job_a_test_key_made_with_the_same_idempotency_key(client, funded, make_key):
    test_key, live_key = make_key(funded, mode="test"), make_key(funded)
    first = generate(client, **{"Idempotency-Key": "k-1", "Authorization": f"Bearer {test_key}"})
    assert first.status_code == HTTPStatus.ACCEPTED
    again = generate(client, **{"Idempotency-Key": "k-1", "Authorization": f"Bearer {live_key}"})
    assert again.status_code == HTTPStatus.CONFLICT
    assert Job.objects.count() == 1 and wallet_balance(user_id=funded.pk) == 100
    live_first = generate(client, **{"Idempotency-Key": "k-2", "Authorization": f"Bearer {live_key}"})
    assert live_first.status_code == HTTPStatus.ACCEPTED
    test_again = generate(client, **{"Idempotency-Key": "k-2", "Authorization": f"Bearer {test_key}"})
    assert test_again.status_code == HTTPStatus.CONFLICT


def as_wsgi_reads_it(header: str) -> str:
    """A header value as a WSGI server hands it over: the bytes sent (UTF-8), read as Latin-1."""
    return header.encode().decode("latin-1")


def test_an_idempotency_key_is_counted_in_the_characters_sent(api, funded, no_worker):
    key = as_wsgi_reads_it("é" * 255)  # 510 bytes
    first = generate(api, **{"Idempotency-Key": key})
    assert first.status_code == HTTPStatus.ACCEPTED
    assert generate(api, **{"Idempotency-Key": key}).json()["data"]["jobId"] == first.json()["data"]["jobId"]
    assert Job.objects.get().idempotency_key == "é" * 255
    too_long = generate(api, **{"Idempotency-Key": as_wsgi_reads_it("é" * 256)})
    assert "Idempotency-Key" in too_long.json()["error"]["details"]


def test_a_dry_run_checks_the_idempotency_key_as_the_submit_would(api, funded):
    response = api.post(
        "/api/v1/generate?dryRun=true",
        {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "x"},
        content_type="application/json",
        headers={"Idempotency-Key": "k" * 256},
    )
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "Idempotency-Key" in response.json()["error"]["details"]


def test_a_dry_run_with_a_key_used_for_another_body_is_the_409_the_submit_would_be(api, funded, no_worker):
    generate(api, **{"Idempotency-Key": "used-1"})

    def dry_run(prompt: str):
        body = {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": prompt}
        headers = {"Idempotency-Key": "used-1"}
        return api.post("/api/v1/generate?dryRun=true", body, content_type="application/json", headers=headers)

    assert dry_run("another picture").status_code == HTTPStatus.CONFLICT
    assert dry_run("A cat wearing a top hat").status_code == HTTPStatus.OK
    assert Job.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_a_409(api, funded, no_worker):
    generate(api, **{"Idempotency-Key": "abc-123"})
    response = generate(api, {"prompt": "something else"}, **{"Idempotency-Key": "abc-123"})
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json()["error"]["code"] == "idempotency_conflict"


def test_an_idempotency_key_is_free_again_after_24_hours(api, funded, no_worker):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    generate(api, **{"Idempotency-Key": "abc-123"})
    Job.objects.update(status=JobStatus.COMPLETED)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        generate(api, **{"Idempotency-Key": "abc-123"})
    assert Job.objects.count() == 2


def test_a_replay_gets_its_job_even_with_no_credits_left_and_the_parallel_limit_reached(api, user, no_worker):
    from billing.services import wallet_adjust

    wallet_adjust(user_id=user.pk, amount=1, reason="one job")
    first = generate(api, **{"Idempotency-Key": "last-one"})
    assert first.status_code == HTTPStatus.ACCEPTED and wallet_balance(user_id=user.pk) == 0  # free plan: 1 at a time
    again = generate(api, **{"Idempotency-Key": "last-one"})
    assert again.status_code == HTTPStatus.ACCEPTED and again["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["jobId"] == first.json()["data"]["jobId"]
    assert Job.objects.count() == 1 and JobEvent.objects.count() == 1
    assert LedgerEntry.objects.filter(user=user, amount__lt=0).count() == 1 and wallet_balance(user_id=user.pk) == 0


def test_a_submission_over_the_parallel_task_limit_is_a_429(api, funded, no_worker):
    assert generate(api).status_code == HTTPStatus.ACCEPTED
    response = generate(api)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response["Retry-After"]
    assert wallet_balance(user_id=funded.pk) == 99
    # The refused job was written, counted and rolled back with its charge: nothing of it stays.
    assert Job.objects.count() == 1 and JobEvent.objects.count() == 1
    assert LedgerEntry.objects.filter(user=funded, amount__lt=0).count() == 1


def test_a_test_mode_key_is_free_and_runs_locally(client, funded, make_key):
    key = make_key(funded, mode="test")
    response = generate(client, {"model": "flux-dev"}, Authorization=f"Bearer {key}")
    assert response.json()["data"]["creditsCharged"] == 0
    job = Job.objects.get()
    assert (job.is_test, job.route, job.status) == (True, "local", JobStatus.COMPLETED)
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_test_mode_job_of_a_configured_upstream_says_test_keys_run_locally(client, funded, make_key, settings):
    settings.FAL_KEY = "fal-key-set"  # flux-dev's upstream is configured: not a fallback
    key = make_key(funded, mode="test")
    job_id = generate(client, {"model": "flux-dev"}, Authorization=f"Bearer {key}").json()["data"]["jobId"]
    job = client.get(f"/api/v1/jobs/{job_id}", HTTP_AUTHORIZATION=f"Bearer {key}").json()["data"]
    assert job["metadata"]["testMode"] is True and "localFallback" not in job["metadata"]
    assert job["metadata"]["note"] == "Test keys always run on the built-in local engine."


def test_a_key_limited_to_other_models_is_forbidden(client, funded, make_key):
    key = make_key(funded, allowed_models=["flux-dev"])
    response = generate(client, Authorization=f"Bearer {key}")
    assert response.status_code == HTTPStatus.FORBIDDEN
    body = {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "x"}
    quote = client.post(
        "/api/v1/generate?dryRun=true",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert quote.status_code == HTTPStatus.FORBIDDEN  # a quote does not promise what the submit refuses


def test_a_key_without_the_generate_scope_is_forbidden(client, funded, make_key):
    key = make_key(funded, scopes=["jobs:read"])
    assert generate(client, Authorization=f"Bearer {key}").status_code == HTTPStatus.FORBIDDEN


def test_a_model_whose_upstream_is_not_configured_is_503_without_fallback(api, funded, settings):
    settings.FLIXLY_LOCAL_FALLBACK = False
    response = generate(api, {"model": "flux-dev"})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert wallet_balance(user_id=funded.pk) == 100
    listed = {m["id"]: m for m in api.get("/api/v1/models?limit=100").json()["data"]}
    assert listed["flux-dev"]["available"] is False
    assert listed["local-image"]["available"] is True


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/generate", {"model": "flux-dev", "type": "TEXT_TO_IMAGE", "prompt": "A cat"}),
        ("/openai/v1/images/generations", {"model": "flux-dev", "prompt": "A cat"}),
    ],
)
def test_a_model_this_server_does_not_run_is_logged_as_a_warning_not_an_error(
    api, funded, settings, caplog, path, body
):
    # The caller chose a model the catalog marks unavailable: nothing for an operator to fix tonight.
    settings.FLIXLY_LOCAL_FALLBACK = False
    response = api.post(path, body, content_type="application/json")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
    warned = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warned) == 1 and path in warned[0] and "flux-dev" in warned[0]


def test_a_broker_outage_at_submit_is_still_logged_as_an_error(api, funded, caplog, monkeypatch):
    from tests.generation.worker_helpers import celery_conf

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery's conf prefers this variable over broker_url
    with celery_conf(broker_url="redis://127.0.0.1:9/0", task_always_eager=False):
        response = generate(api)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    errors = [(record.name, record.getMessage()) for record in caplog.records if record.levelno >= logging.ERROR]
    assert ("django.request", "Service Unavailable: /api/v1/generate") in errors
    assert any("broker unavailable" in message for _, message in errors)


def test_prefer_wait_returns_the_finished_job_with_200(api, funded):
    response = generate(api, Prefer="wait=10")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["data"]["status"] == "completed"
    assert response.json()["data"]["outputUrl"]


def submit_statements(api) -> list[str]:
    """SQL a warm submit runs, without transaction control (SQLite's BEGIN IMMEDIATE / COMMIT)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    generate(api, {"prompt": "warm up"})  # warms the key cache and writes last_used_at
    Job.objects.update(status=JobStatus.COMPLETED)
    with CaptureQueriesContext(connection) as captured:
        assert generate(api, **{"Idempotency-Key": "q-1"}).status_code == HTTPStatus.ACCEPTED
    return [q["sql"] for q in captured if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]


@pytest.mark.django_db(transaction=True)  # the submit's atomic() is then top level, as in production
def test_a_submit_runs_at_most_six_queries(api, funded, no_worker):
    statements = submit_statements(api)
    assert len(statements) <= 6, statements


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_submit_runs_one_statement_on_postgresql(api, funded, no_worker):
    # The debit, its ledger row, the count of running jobs, the job and its event: one round trip.
    statements = submit_statements(api)
    assert len(statements) == 1 and statements[0].startswith("WITH lead_row AS (UPDATE billing_wallet"), statements


def test_job_events_record_the_lifecycle(api, funded):
    job_id = generate(api).json()["data"]["jobId"]
    kinds = list(JobEvent.objects.filter(job_id=job_id).values_list("kind", flat=True))
    assert kinds[0] == "created"
    assert "started" in kinds
    assert kinds[-1] == "completed"


def test_an_image_upload_drives_image_to_image(api, funded):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), "teal").save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = "in.png"
    body = {"model": "local-image-edit", "type": "IMAGE_TO_IMAGE", "prompt": "make it warmer", "image": buffer}
    response = api.post("/api/v1/generate", body)
    assert response.status_code == HTTPStatus.ACCEPTED, response.json()
    job = Job.objects.get()
    assert job.status == JobStatus.COMPLETED
    assert job.input_file


def test_an_upload_that_is_not_an_image_is_a_422(api, funded):
    import io

    fake = io.BytesIO(b"not an image at all")
    fake.name = "x.png"
    body = {"model": "local-image-edit", "type": "IMAGE_TO_IMAGE", "prompt": "x", "image": fake}
    response = api.post("/api/v1/generate", body)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "image" in response.json()["error"]["details"]


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header declares a huge canvas (what a decompression bomb looks like)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [12_000, 20_000, 100_000])
def test_an_upload_declaring_too_many_pixels_is_a_422_not_a_crash(api, funded, side):
    import io

    bomb = io.BytesIO(png_declaring(side, side))
    bomb.name = "bomb.png"
    body = {"model": "local-image-edit", "type": "IMAGE_TO_IMAGE", "prompt": "x", "image": bomb}
    response = api.post("/api/v1/generate", body)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "too many pixels" in response.json()["error"]["details"]["image"][0]
    assert wallet_balance(user_id=funded.pk) == 100


def test_an_upload_over_5_mb_is_a_413(api, funded, settings):
    import io

    big = io.BytesIO(b"\x89PNG" + b"0" * (5 * 1024 * 1024 + 10))
    big.name = "big.png"
    body = {"model": "local-image-edit", "type": "IMAGE_TO_IMAGE", "prompt": "x", "image": big}
    response = api.post("/api/v1/generate", body)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_an_image_url_to_a_private_address_is_refused(api, funded):
    body = {"model": "local-image-edit", "type": "IMAGE_TO_IMAGE", "prompt": "x", "imageUrl": "https://127.0.0.1/a.png"}
    response = api.post("/api/v1/generate", body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "private" in response.json()["error"]["details"]["imageUrl"][0]


def test_a_refused_upload_leaves_no_file_behind(api, user, settings, tmp_path):
    import io

    from django.core.files.storage import default_storage
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = "in.png"
    body = {"model": "local-image-edit", "type": "IMAGE_TO_IMAGE", "prompt": "x", "image": buffer}
    assert api.post("/api/v1/generate", body).status_code == HTTPStatus.PAYMENT_REQUIRED
    folder = f"inputs/{user.pk}"
    assert not default_storage.exists(folder) or default_storage.listdir(folder) == ([], [])


def test_output_urls_are_presigned_when_outputs_live_on_s3(settings):
    from generation.outputs import output_url

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "flixly-test",
                "access_key": "AKIATEST",
                "secret_key": "secret",
                "region_name": "us-east-1",
                "querystring_expire": 86400,
                "signature_version": "s3v4",
            },
        },
    }
    url = output_url("outputs/1/job/0.png")
    assert url.startswith("https://flixly-test.s3")
    assert "X-Amz-Expires=86400" in url
    assert "X-Amz-Signature=" in url


def test_a_number_past_the_global_bound_is_named_with_the_models_own_range(api, funded):
    response = generate(api, {"model": "kling-3.0", "type": "TEXT_TO_VIDEO", "prompt": "a wave", "duration": 999})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["error"]["details"]["duration"] == ["Must be between 3 and 8 for Kling 3.0."]


def test_a_bad_query_parameter_is_not_called_a_body_error(api):
    error = api.get("/api/v1/jobs?limit=500").json()["error"]
    assert error["code"] == "validation_error" and "body" not in error["message"]


def test_a_whole_duration_is_echoed_as_sent(api, funded):
    body = {"model": "kling-3.0", "type": "TEXT_TO_VIDEO", "prompt": "waves", "duration": 5}
    response = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json")
    assert response.status_code == HTTPStatus.OK
    assert json.dumps(response.json()["data"]["params"]["duration"]) == "5"


@pytest.mark.parametrize(("model", "duration"), [("seedance-2.0", 4.0001), ("local-video", 9.99), ("local-music", 7.5)])
def test_a_fractional_duration_is_a_422_not_the_next_price_tier(api, funded, model, duration):
    kind = "TEXT_TO_MUSIC" if model == "local-music" else "TEXT_TO_VIDEO"
    body = {"model": model, "type": kind, "prompt": "waves", "duration": duration}
    response = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["error"]["details"]["duration"] == ["Must be an integer, not a number."]


def test_messages_for_a_type_other_than_chat_are_a_422_not_dropped(api, funded):
    body = {
        "model": "local-image",
        "type": "TEXT_TO_IMAGE",
        "prompt": "cat",
        "messages": [{"role": "user", "content": "x"}],
    }
    response = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["error"]["details"] == {"messages": ["TEXT_TO_IMAGE does not take messages; send a prompt."]}


def test_a_whole_duration_sent_as_a_float_is_taken(api, funded):
    body = {"model": "kling-3.0", "type": "TEXT_TO_VIDEO", "prompt": "waves", "duration": 5.0}
    response = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json")
    assert response.json()["data"]["params"]["duration"] == 5


def test_a_chat_message_keeps_only_its_role_and_content(api, funded, no_worker):
    message = {"role": "user", "content": "hi", "name": "a\x00b", "padding": "x" * 50_000}
    body = {"model": "local-chat", "type": "CHAT", "messages": [message]}
    response = api.post("/api/v1/generate", body, content_type="application/json")
    assert response.status_code == HTTPStatus.ACCEPTED
    assert Job.objects.get().params["messages"] == [{"role": "user", "content": "hi"}]


def test_the_charge_names_the_model_and_the_kind_of_job_in_words(api, funded, no_worker):
    generate(api)
    debit = LedgerEntry.objects.get(kind="debit")
    assert debit.reason == "Flixly Local Image (text to image)"  # not (TEXT_TO_IMAGE)


def test_a_type_the_model_does_not_make_is_named_in_words_and_ids(api, funded):
    response = generate(api, {"model": "local-speech", "type": "TEXT_TO_IMAGE"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["error"]["details"]["type"] == [
        "Flixly Local Speech makes text to speech (TEXT_TO_SPEECH), not text to image (TEXT_TO_IMAGE)."
    ]


@pytest.mark.parametrize("db_pass", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_price_past_32_bits_is_recorded_and_refunded_as_debited(api, user, settings, no_worker, db_pass):
    from billing.services import wallet_adjust
    from generation.catalog import catalog_forget
    from generation.models import AiModel
    from generation.pricing import catalog_problems
    from generation.services import job_fail

    price = 2**32 + 5  # a 32-bit column would keep 5 of it
    settings.FLIXLY_EXTRA_PROVIDERS = {"scripted": "tests.generation.conftest.ScriptedProvider"}
    model = AiModel(
        id="pricey-speech", name="Pricey", types=["TEXT_TO_SPEECH"], credits=5, route="scripted",
        upstream_model="s", pricing={"perThousandChars": price},
    )  # fmt: skip
    assert catalog_problems(model) == {}
    model.save()
    catalog_forget()
    wallet_adjust(user_id=user.pk, amount=price, reason="a big spender")
    response = generate(api, {"model": "pricey-speech", "type": "TEXT_TO_SPEECH", "prompt": "hi"})
    assert response.status_code == HTTPStatus.ACCEPTED, response.content
    job = Job.objects.get()
    debit = LedgerEntry.objects.get(kind=EntryKind.DEBIT, reference_id=str(job.pk))
    assert response.json()["data"]["creditsCharged"] == -debit.amount == job.credits_charged == price
    assert job_fail(job_id=job.pk, detail="upstream down")
    assert wallet_balance(user_id=user.pk) == price
