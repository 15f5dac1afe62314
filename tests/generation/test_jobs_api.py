import csv
import io
import re
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from billing.models import EntryKind, LedgerEntry
from billing.services import wallet_balance
from generation.models import Job, JobStatus
from generation.selectors import EXPORT_CHUNK_BYTES, FORMULA_STARTS
from tests.factories import UserFactory
from tests.generation.conftest import generate

pytestmark = pytest.mark.django_db


def make_jobs(user, count: int, **fields) -> list[Job]:
    defaults = {"model_id": "local-image", "type": "TEXT_TO_IMAGE", "route": "local", "status": JobStatus.COMPLETED}
    return [Job.objects.create(user=user, **{**defaults, **fields}) for _ in range(count)]


def test_a_job_has_every_contract_field(api, funded):
    job_id = generate(api).json()["data"]["jobId"]
    data = api.get(f"/api/v1/jobs/{job_id}").json()["data"]
    expected = {
        "jobId",
        "status",
        "progress",
        "model",
        "type",
        "params",
        "creditsCharged",
        "creditsRefunded",
        "outputUrl",
        "outputs",
        "error",
        "createdAt",
        "startedAt",
        "completedAt",
    }
    assert expected <= set(data)
    assert data["createdAt"].endswith("Z")
    output = data["outputs"][0]
    assert set(output) == {"url", "contentType", "width", "height", "durationSeconds", "bytes"}


def test_another_accounts_job_is_not_found(api, funded):
    other_job = make_jobs(UserFactory(), 1)[0]
    for response in (api.get(f"/api/v1/jobs/{other_job.id}"), api.post(f"/api/v1/jobs/{other_job.id}/cancel")):
        assert response.status_code == HTTPStatus.NOT_FOUND
    assert api.get("/api/v1/jobs/not-a-uuid").status_code == HTTPStatus.NOT_FOUND


def test_the_list_is_newest_first_and_cursor_paginated(api, user):
    jobs = make_jobs(user, 5)
    first = api.get("/api/v1/jobs?limit=2").json()
    assert [j["jobId"] for j in first["data"]] == [str(jobs[4].id), str(jobs[3].id)]
    second = api.get(f"/api/v1/jobs?limit=2&cursor={first['nextCursor']}").json()
    assert [j["jobId"] for j in second["data"]] == [str(jobs[2].id), str(jobs[1].id)]


def test_the_list_filters_by_status_type_model_and_time(api, user):
    make_jobs(user, 2)
    make_jobs(user, 1, status=JobStatus.FAILED)
    make_jobs(user, 1, model_id="local-music", type="TEXT_TO_MUSIC")
    assert len(api.get("/api/v1/jobs?status=failed").json()["data"]) == 1
    assert len(api.get("/api/v1/jobs?type=TEXT_TO_MUSIC").json()["data"]) == 1
    assert len(api.get("/api/v1/jobs?model=local-image").json()["data"]) == 3
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert api.get(f"/api/v1/jobs?createdAfter={tomorrow}").json()["data"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("type=PAINT", "type"),
        ("createdAfter=yesterday", "createdAfter"),
        ("limit=500", "limit"),
        ("model=flux%00dev", "model"),  # PostgreSQL refuses NUL in text: a 500 before
        (f"model={'m' * 65}", "model"),
    ],
)
def test_bad_list_filters_are_a_422(api, user, query, field):
    response = api.get(f"/api/v1/jobs?{query}")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert field in response.json()["error"]["details"]


def test_canceling_a_queued_job_refunds_it_once(api, funded, no_worker):
    job_id = generate(api).json()["data"]["jobId"]
    for _ in range(3):
        data = api.post(f"/api/v1/jobs/{job_id}/cancel").json()["data"]
    assert (data["status"], data["creditsRefunded"]) == ("canceled", 1)
    assert wallet_balance(user_id=funded.pk) == 100
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1


def test_canceling_a_finished_job_is_a_no_op(api, funded):
    job_id = generate(api).json()["data"]["jobId"]
    response = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["data"]["status"] == "completed"
    assert wallet_balance(user_id=funded.pk) == 99


def test_the_csv_export_streams_the_window(api, user):
    make_jobs(user, 3)
    old = make_jobs(user, 1)[0]
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    today = timezone.now().date()
    response = api.get(f"/api/v1/jobs/export.csv?from={today - timedelta(days=7)}&to={today}")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["jobId", "createdAt", "startedAt"]
    assert len(rows) == 4


@pytest.mark.parametrize("accept", ["text/csv", "text/*", "text/csv, application/json;q=0.5"])
def test_a_client_that_asks_for_csv_gets_the_export(api, user, accept):
    make_jobs(user, 2)
    response = api.get("/api/v1/jobs/export.csv", headers={"Accept": accept})
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    assert len(list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))) == 3


def test_a_client_that_asks_for_csv_gets_errors_in_the_contracts_json(api, client, user):
    response = api.get("/api/v1/jobs/export.csv?from=2020-01-01&to=2026-01-01", headers={"Accept": "text/csv"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "validation_error"
    client.defaults["HTTP_AUTHORIZATION"] = "Bearer flx_live_" + "0" * 40
    response = client.get("/api/v1/jobs/export.csv", headers={"Accept": "text/csv"})
    assert response.status_code == HTTPStatus.UNAUTHORIZED and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("accept", ["text/html", "image/png"])
def test_an_accept_the_export_cannot_meet_is_a_406_in_the_contracts_shape(api, accept):
    response = api.get("/api/v1/jobs/export.csv", headers={"Accept": accept})
    assert response.status_code == HTTPStatus.NOT_ACCEPTABLE
    assert response.json()["error"]["code"] == "not_acceptable"


def export_rows(api, user) -> list[list[str]]:
    make_jobs(user, 2, credits_charged=3)
    Job.objects.filter(user=user).update(is_test=True)
    today = timezone.now().date()
    response = api.get(f"/api/v1/jobs/export.csv?from={today - timedelta(days=1)}&to={today}")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


CONTRACT_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # API.md: 2026-03-16T12:00:00Z


def test_export_cells_are_iso_utc_timestamps_and_plain_booleans(api, user):
    rows = export_rows(api, user)
    assert CONTRACT_TIMESTAMP.fullmatch(rows[1][1])
    assert rows[1][7:10] == ["3", "0", "true"]


def test_every_api_timestamp_is_in_the_contracts_form(api, funded):
    job_id = generate(api).json()["data"]["jobId"]
    job = api.get(f"/api/v1/jobs/{job_id}").json()["data"]
    key = api.get("/api/v1/keys").json()["data"][0]
    entry = api.get("/api/v1/credits/ledger").json()["data"][0]
    usage = api.get("/api/v1/usage").json()["data"]
    stamps = [job["createdAt"], job["startedAt"], job["completedAt"], key["createdAt"], key["expiresAt"]]
    stamps += [entry["createdAt"], usage["cycleStart"], usage["cycleEnd"]]
    assert all(CONTRACT_TIMESTAMP.fullmatch(stamp) for stamp in stamps), stamps


def test_created_before_a_jobs_own_timestamp_includes_it(api, funded):
    job = generate(api).json()["data"]
    listed = api.get("/api/v1/jobs", {"createdBefore": job["createdAt"], "createdAfter": job["createdAt"]})
    assert [j["jobId"] for j in listed.json()["data"]] == [job["jobId"]]


@pytest.mark.parametrize("query", ["createdAfter=2026-01-01T00:00:00+01:00", "createdBefore=2026-01-01T10:00+0100"])
def test_an_offset_whose_plus_a_query_string_read_as_a_space_is_read_as_the_plus(api, user, query):
    make_jobs(user, 1)  # `curl "...?createdAfter=...T00:00:00+01:00"` sends the + unencoded: a space on arrival
    encoded = query.replace("+", "%2B")
    response = api.get(f"/api/v1/jobs?{query}")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == api.get(f"/api/v1/jobs?{encoded}").json()


def test_an_export_bound_with_an_unencoded_plus_is_read_as_its_offset(api, user):
    make_jobs(user, 1)
    start = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    response = api.get(f"/api/v1/jobs/export.csv?from={start}")
    assert response.status_code == HTTPStatus.OK
    assert len(list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))) == 2


@pytest.mark.postgres
def test_the_postgresql_export_streams_with_copy_in_the_same_format(api, user):
    rows = export_rows(api, user)
    assert rows[0][0] == "jobId"
    assert len(rows) == 3
    assert CONTRACT_TIMESTAMP.fullmatch(rows[1][1])
    assert rows[1][7:10] == ["3", "0", "true"]


def export_in_chunks(api, user) -> list[bytes]:
    Job.objects.bulk_create(
        Job(user=user, model_id="local-image", type="TEXT_TO_IMAGE", route="local", status=JobStatus.COMPLETED)
        for _ in range(1500)
    )
    today = timezone.now().date()
    response = api.get(f"/api/v1/jobs/export.csv?from={today - timedelta(days=1)}&to={today}")
    return list(response.streaming_content)


def assert_written_in_large_chunks(chunks: list[bytes]) -> None:
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) == 1 + 1500
    assert 2 <= len(chunks) <= 1 + len(b"".join(chunks)) // EXPORT_CHUNK_BYTES  # not one write per row
    assert all(len(chunk) >= EXPORT_CHUNK_BYTES for chunk in chunks[:-1])


def test_the_export_is_sent_in_large_chunks_not_row_by_row(api, user):
    assert_written_in_large_chunks(export_in_chunks(api, user))


@pytest.mark.postgres
def test_the_postgresql_export_is_sent_in_large_chunks_not_row_by_row(api, user):
    assert_written_in_large_chunks(export_in_chunks(api, user))


def export_csv_rows(api, query: str = "") -> list[list[str]]:
    today = timezone.now().date()
    response = api.get(f"/api/v1/jobs/export.csv?from={today - timedelta(days=1)}&to={today}&{query}")
    assert response.status_code == HTTPStatus.OK, response.content
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def jobs_to_filter(user) -> dict[str, Job]:
    return {
        "failed speech": make_jobs(user, 1, status=JobStatus.FAILED, model_id="local-speech", type="TEXT_TO_SPEECH")[0],
        "completed speech": make_jobs(user, 1, model_id="local-speech", type="TEXT_TO_SPEECH")[0],
        "failed image": make_jobs(user, 1, status=JobStatus.FAILED)[0],
    }


# Each runs on SQLite (Python writes the CSV) and, in the PostgreSQL pass, on COPY.
ON_EACH_DATABASE = pytest.mark.parametrize("db_pass", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])


@ON_EACH_DATABASE
def test_the_export_takes_the_lists_status_type_and_model_filters(api, user, db_pass):
    jobs = jobs_to_filter(user)
    rows = export_csv_rows(api, "status=failed&type=TEXT_TO_SPEECH&model=local-speech")
    assert [row[0] for row in rows[1:]] == [str(jobs["failed speech"].pk)]
    assert len(export_csv_rows(api, "status=failed")) == 1 + 2


def test_an_unknown_export_filter_value_is_a_422_naming_it(api, user):
    response = api.get("/api/v1/jobs/export.csv?status=done")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert set(response.json()["error"]["details"]) == {"status"}


@ON_EACH_DATABASE
def test_the_export_shows_each_jobs_prompt(api, user, db_pass):
    make_jobs(user, 1, params={"prompt": "a lighthouse, at dawn"})
    chat = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    make_jobs(user, 1, model_id="local-chat", type="CHAT", params=chat)
    rows = export_csv_rows(api)
    assert rows[0][-1] == "prompt"
    assert [row[-1] for row in rows[1:]] == ["a lighthouse, at dawn", "Hi"]


@ON_EACH_DATABASE
@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_prompt_a_spreadsheet_would_run_as_a_formula_starts_with_a_quote(api, user, db_pass, start):
    # OWASP's advice on CSV injection; a chat's message is checked like a prompt.
    make_jobs(user, 1, params={"prompt": f'{start}HYPERLINK("https://evil.example")'})
    chat = {"messages": [{"role": "user", "content": f"{start}1+1"}]}
    make_jobs(user, 1, model_id="local-chat", type="CHAT", params=chat)
    rows = export_csv_rows(api)
    assert [row[-1] for row in rows[1:]] == [f'\'{start}HYPERLINK("https://evil.example")', f"'{start}1+1"]


def test_an_export_window_over_90_days_is_a_422(api, user):
    response = api.get("/api/v1/jobs/export.csv?from=2026-01-01&to=2026-06-01")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "to" in response.json()["error"]["details"]


def test_an_export_of_exactly_90_days_by_date_is_accepted_and_includes_its_last_day(api, user):
    last_day = timezone.now().replace(hour=12) - timedelta(days=1)
    make_jobs(user, 1, created_at=last_day)  # created_at is set on insert: move it after
    Job.objects.filter(user=user).update(created_at=last_day)
    first, last = (last_day - timedelta(days=90)).date(), last_day.date()
    response = api.get(f"/api/v1/jobs/export.csv?from={first}&to={last}")
    assert response.status_code == HTTPStatus.OK
    assert len(list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))) == 2
    one_more = (last_day - timedelta(days=91)).date()
    assert api.get(f"/api/v1/jobs/export.csv?from={one_more}&to={last}").status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        "createdAfter=2026-13-45",
        "createdBefore=2026-11-23T25:00:00Z",
        "createdAfter=2026-02-30",
        "createdAfter=0001-01-01T00:00:00%2B05:00",
        "createdBefore=9999-12-31T23:00:00-05:00",
    ],
)
def test_an_impossible_date_filter_is_a_422_naming_the_field(api, user, query):
    response = api.get(f"/api/v1/jobs?{query}")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert set(response.json()["error"]["details"]) == {query.split("=")[0]}


def test_an_export_to_the_first_days_of_year_one_is_a_422(api, user):
    response = api.get("/api/v1/jobs/export.csv?to=0001-01-01")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "to" in response.json()["error"]["details"]


def test_an_impossible_export_date_is_a_422(api, user):
    response = api.get("/api/v1/jobs/export.csv?from=2026-02-30&to=2026-03-01")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "from" in response.json()["error"]["details"]


def test_an_export_with_from_after_to_is_a_422(api, user):
    assert api.get("/api/v1/jobs/export.csv?from=2026-05-01&to=2026-04-01").status_code == 422


def test_output_urls_expire_after_24_hours(api, funded):
    import time_machine

    url = api.get(f"/api/v1/jobs/{generate(api).json()['data']['jobId']}").json()["data"]["outputUrl"]
    path = url.removeprefix("http://127.0.0.1:8000")
    assert api.get(path).status_code == HTTPStatus.OK
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        assert api.get(path).status_code == HTTPStatus.FORBIDDEN


@pytest.mark.parametrize(
    "tamper", [lambda token, name: (token[:-3] + "abc", name), lambda token, name: (token, "evil.html")]
)
def test_a_tampered_output_url_is_refused(client, api, funded, tamper):
    url = api.get(f"/api/v1/jobs/{generate(api).json()['data']['jobId']}").json()["data"]["outputUrl"]
    path = url.removeprefix("http://127.0.0.1:8000")
    token, filename = tamper(*path.removeprefix("/outputs/").split("/"))
    response = client.get(f"/outputs/{token}/{filename}")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert b"PNG" not in response.content


def test_the_models_api_lists_the_catalog_20_at_a_time_like_every_list(client, db):
    listing = client.get("/api/v1/models").json()
    assert len(listing["data"]) == 20 and listing["nextCursor"]
    assert len(client.get("/api/v1/models?limit=100").json()["data"]) >= 50
    seedance = client.get("/api/v1/models/seedance-2.0").json()["data"]
    assert seedance["credits"] == 12
    assert seedance["pricing"]["byResolution"]["720p"]
    assert {"id", "name", "types", "credits", "pricing", "params", "available"} <= set(seedance)
    assert "upstreamModel" not in seedance
    assert client.get("/api/v1/models/nope").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize("db_pass", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("path", ["/api/v1/models/", "/openai/v1/models/"])
@pytest.mark.parametrize("model_id", ["%00", "flux%00dev", "x" * 65])
def test_a_model_id_no_model_can_have_is_a_plain_404(db_pass, api, path, model_id):
    response = api.get(path + model_id)
    assert response.status_code == HTTPStatus.NOT_FOUND, response.content[:300]


@pytest.mark.parametrize("db_pass", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/jobs/%00"), ("post", "/api/v1/jobs/%00/cancel"), ("delete", "/api/v1/keys/%00")],
)
def test_an_id_with_a_nul_byte_is_a_plain_404(db_pass, api, method, path):
    assert getattr(api, method)(path).status_code == HTTPStatus.NOT_FOUND


def test_the_models_api_pages_when_asked_for_a_limit(client, db):
    everything = [m["id"] for m in client.get("/api/v1/models?limit=100").json()["data"]]
    seen, cursor = [], ""
    while True:
        page = client.get(f"/api/v1/models?limit=7{cursor}").json()
        assert len(page["data"]) <= 7
        seen += [m["id"] for m in page["data"]]
        if page["nextCursor"] is None:
            break
        assert re.fullmatch(r"[\w\-:]+", page["nextCursor"], re.ASCII)  # pastes into a URL as it is, like every cursor
        cursor = f"&cursor={page['nextCursor']}"
    assert seen == everything
    assert len(client.get("/api/v1/models?limit=100").json()["data"]) == min(100, len(everything))


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "cursor=made-up"])
def test_a_bad_limit_or_cursor_on_the_models_api_is_named(client, db, query):
    response = client.get(f"/api/v1/models?{query}")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert set(response.json()["error"]["details"]) == {query.split("=")[0]}


def test_the_models_api_filters_by_type_and_pages_within_it(client, db):
    videos = client.get("/api/v1/models?type=TEXT_TO_VIDEO&limit=5").json()
    assert len(videos["data"]) == 5 and all("TEXT_TO_VIDEO" in m["types"] for m in videos["data"])
    after = client.get(f"/api/v1/models?type=TEXT_TO_VIDEO&limit=5&cursor={videos['nextCursor']}").json()["data"]
    assert after and all("TEXT_TO_VIDEO" in m["types"] for m in after)
    response = client.get("/api/v1/models?type=VIDEO")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert set(response.json()["error"]["details"]) == {"type"}


def test_a_models_cursor_still_works_when_its_last_model_was_disabled(client, db):
    from generation.catalog import catalog_forget
    from generation.models import AiModel

    first = client.get("/api/v1/models?limit=3").json()
    AiModel.objects.filter(id=first["data"][-1]["id"]).update(enabled=False)
    catalog_forget()
    after = client.get(f"/api/v1/models?limit=3&cursor={first['nextCursor']}").json()["data"]
    everything = [m["id"] for m in client.get("/api/v1/models?limit=100").json()["data"]]
    assert [m["id"] for m in after] == everything[2:5]


def test_a_disabled_model_disappears_from_the_catalog(client, db):
    from generation.catalog import catalog_forget
    from generation.models import AiModel

    AiModel.objects.filter(id="flux-dev").update(enabled=False)
    catalog_forget()
    assert client.get("/api/v1/models/flux-dev").status_code == HTTPStatus.NOT_FOUND


def test_sync_catalog_is_idempotent_and_keeps_staff_choices(db):
    from django.core.management import call_command

    from generation.models import AiModel

    AiModel.objects.filter(id="flux-dev").update(enabled=False)
    call_command("sync_catalog")
    call_command("sync_catalog")
    assert AiModel.objects.count() >= 50
    assert AiModel.objects.get(id="flux-dev").enabled is False


@pytest.mark.parametrize(
    ("model", "job_type"),
    [("local-image", "TEXT_TO_IMAGE"), ("local-video", "TEXT_TO_VIDEO"), ("local-speech", "TEXT_TO_SPEECH")],
)
def test_an_output_is_served_with_the_content_type_its_job_names(api, funded, model, job_type):
    job_id = generate(api, {"model": model, "type": job_type, "prompt": "a short test"}).json()["data"]["jobId"]
    output = api.get(f"/api/v1/jobs/{job_id}").json()["data"]["outputs"][0]
    response = api.get(output["url"].removeprefix("http://127.0.0.1:8000"))
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == output["contentType"]


def _output_path(api) -> str:
    url = api.get(f"/api/v1/jobs/{generate(api).json()['data']['jobId']}").json()["data"]["outputUrl"]
    return url.removeprefix("http://127.0.0.1:8000")


def test_an_output_is_saved_under_the_jobs_name_not_0_png(client, api, funded):
    job_id = generate(api).json()["data"]["jobId"]
    path = api.get(f"/api/v1/jobs/{job_id}").json()["data"]["outputUrl"].removeprefix("http://127.0.0.1:8000")
    for response in (client.get(path), client.get(path, HTTP_RANGE="bytes=0-9")):
        assert response["Content-Disposition"] == f'inline; filename="flixly-{job_id}-0.png"'
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "sandbox"


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", -50, None), ("bytes=10-999999999", 10, None)],
)
def test_an_output_answers_a_byte_range_so_players_can_seek(client, api, funded, header, start, end):
    path = _output_path(api)
    whole = _body(client.get(path))
    size = len(whole)
    response = client.get(path, HTTP_RANGE=header)
    assert response.status_code == HTTPStatus.PARTIAL_CONTENT
    expected = whole[start:] if end is None else whole[start : end + 1]
    assert _body(response) == expected
    first = size + start if start < 0 else start
    assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{size}"
    assert response["Content-Length"] == str(len(expected))
    assert response["Accept-Ranges"] == "bytes"


def test_a_whole_output_says_it_takes_ranges(client, api, funded):
    response = client.get(_output_path(api))
    assert response.status_code == HTTPStatus.OK
    assert response["Accept-Ranges"] == "bytes"


def test_a_range_past_the_end_is_a_416_with_the_size(client, api, funded):
    path = _output_path(api)
    size = len(_body(client.get(path)))
    response = client.get(path, HTTP_RANGE=f"bytes={size}-")
    assert response.status_code == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
    assert response["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("header", ["bytes=5-2", "items=0-10", "bytes=0-1,4-5", "bytes=abc"])
def test_a_range_it_cannot_serve_as_asked_gets_the_whole_file(client, api, funded, header):
    path = _output_path(api)
    whole = _body(client.get(path))
    response = client.get(path, HTTP_RANGE=header)
    assert response.status_code == HTTPStatus.OK
    assert _body(response) == whole


def test_a_disabled_model_is_named_disabled_not_unknown(client, api, funded):
    from generation.catalog import catalog_forget
    from generation.models import AiModel

    AiModel.objects.filter(id="local-image").update(enabled=False)
    catalog_forget()
    submitted = generate(api, {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "a cat"})
    assert submitted.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "disabled" in submitted.json()["error"]["details"]["model"][0]
    detail = client.get("/api/v1/models/local-image")
    assert detail.status_code == HTTPStatus.NOT_FOUND and "disabled" in detail.json()["error"]["message"]
    assert "Unknown model" in generate(api, {"model": "no-such", "type": "TEXT_TO_IMAGE", "prompt": "a"}).text


def test_a_created_after_later_than_created_before_is_a_422_as_on_the_export(api, user):
    response = api.get("/api/v1/jobs?createdAfter=2026-12-01&createdBefore=2026-01-01")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "createdAfter" in response.json()["error"]["details"]
    assert api.get("/api/v1/jobs?createdAfter=2026-01-01&createdBefore=2026-01-01").status_code == HTTPStatus.OK


@pytest.mark.parametrize("header", ["bytes=\u0660-\u0664", "bytes=0-" + "9" * 5000])
def test_a_range_in_other_digits_or_absurdly_long_is_served_sensibly(client, api, funded, header):
    path = _output_path(api)
    whole = _body(client.get(path))
    response = client.get(path, HTTP_RANGE=header)
    # Neither is a range this server reads (Arabic-Indic digits; a number longer than any file's size):
    # the whole file, as for any Range header it ignores.
    assert response.status_code == HTTPStatus.OK and _body(response) == whole


def test_a_post_to_an_output_url_is_refused(client, api, funded):
    assert client.post(_output_path(api), HTTP_RANGE="bytes=0-9").status_code == HTTPStatus.METHOD_NOT_ALLOWED
