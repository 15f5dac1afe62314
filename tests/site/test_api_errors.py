import base64
import io
import json
import logging
import sqlite3
from http import HTTPStatus

import psycopg
import pytest
from django.db import OperationalError
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey


class EchoApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        return Response({"data": request.data})


class CrashApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internals /etc/passwd")


class DatabaseDownApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise unreachable()


def database_down_page(request):
    raise unreachable()


def unreachable() -> OperationalError:
    """Django's error as its database wrapper raises it: psycopg's, which names no SQLSTATE for a server it
    never reached, as its cause."""
    error = OperationalError('connection to server at "10.0.0.5", port 5432 failed: Connection refused')
    error.__cause__ = psycopg.OperationalError(str(error))
    return error


urlpatterns = [
    path("api/v1/echo", EchoApi.as_view()),
    path("api/v1/crash", CrashApi.as_view()),
    path("api/v1/database-down", DatabaseDownApi.as_view()),
    path("api/v1/database-down-page", database_down_page),
    path("", include("flixly_site.urls")),
]
handler400 = "flixly_site.errors.handler400"  # as flixly_site.urls sets it

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["status"] == status
    assert error["message"]
    return error


def test_unknown_api_path_is_a_json_404(client):
    assert_error_shape(client.get("/api/v1/nope"), HTTPStatus.NOT_FOUND, "not_found")


def test_unknown_api_path_is_a_json_404_even_in_debug(client, settings):
    settings.DEBUG = True
    assert_error_shape(client.get("/api/v1/nope"), HTTPStatus.NOT_FOUND, "not_found")


def test_unknown_openai_path_is_a_json_404(client):
    assert_error_shape(client.get("/openai/v1/nope"), HTTPStatus.NOT_FOUND, "not_found")


@pytest.mark.parametrize("path", ["/api", "/openai"])
def test_the_bare_api_roots_are_json_404s(client, path):
    assert_error_shape(client.get(path), HTTPStatus.NOT_FOUND, "not_found")


def test_unknown_page_outside_the_api_stays_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"].startswith("text/html")


def test_wrong_method_is_a_json_405(client):
    error = assert_error_shape(client.delete("/api/v1/health"), HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed")
    assert "DELETE" in error["message"]


def test_options_answers_in_the_envelope(client):
    response = client.options("/api/v1/health")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["data"]["name"] and "GET" in response["Allow"]


def test_malformed_json_is_a_validation_error(client):
    response = client.post("/api/v1/echo", data="{not json", content_type="application/json")
    error = assert_error_shape(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert "body" in error["details"]


@pytest.mark.parametrize("body", ["[" * 200_000, '{"a":' * 100_000])
def test_json_nested_too_deep_is_a_validation_error_not_a_crash(client, body):
    response = client.post("/api/v1/echo", data=body, content_type="application/json")
    error = assert_error_shape(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert "body" in error["details"]


@pytest.mark.parametrize(
    "body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": "\xff"}', b'{"a": "x\\ud800y"}', b'{"a": ["\\uDFFF"]}']
)
def test_json_that_is_not_strict_json_in_utf_8_is_a_validation_error(client, body):
    response = client.post("/api/v1/echo", data=body, content_type="application/json")
    error = assert_error_shape(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert "body" in error["details"]


@pytest.mark.parametrize(
    ("charset", "body"), [("utf-7", b'{"a": "x+2AA-y"}'), ("unicode_escape", b'{"a": "x\\ud800y"}')]
)
def test_a_lone_surrogate_in_another_charset_is_a_validation_error(client, charset, body):
    # generic() sends the bytes as they are (post() would re-encode them into the charset)
    response = client.generic("POST", "/api/v1/echo", body, content_type=f"application/json; charset={charset}")
    error = assert_error_shape(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert "body" in error["details"]


def test_a_surrogate_pair_written_as_escapes_is_one_character(client):
    response = client.post("/api/v1/echo", data=b'{"a": "\\ud83d\\ude00"}', content_type="application/json")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["data"]["a"] == "\U0001f600"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/*", "text/html, application/json"])
def test_any_accept_header_that_takes_json_gets_json(client, accept):
    headers = {"Accept": accept} if accept else {}
    response = client.post("/api/v1/echo", data={"a": 1}, content_type="application/json", headers=headers)
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/json"


def test_an_accept_header_without_json_is_a_406_in_the_contracts_shape(client):
    response = client.post("/api/v1/echo", data={}, content_type="application/json", headers={"Accept": "text/html"})
    assert_error_shape(response, HTTPStatus.NOT_ACCEPTABLE, "not_acceptable")


def _cursor(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/keys", "/api/v1/credits/ledger"])
@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("2026-11-23T17:43:09+00:00", "abc"),
        _cursor("2026-11-23T17:43:09+00:00", None),
        _cursor("2026-11-23T17:43:09+00:00", 10**30),
        _cursor("2026-11-23T17:43:09+00:00", str(10**30)),
        _cursor("2026-11-23T17:43:09+00:00", str(-(10**30))),
        _cursor("2026-11-23T17:43:09+00:00", True),
        _cursor("2026-11-23T17:43:09+00:00", [1]),
        _cursor(12, 1),
        _cursor("2026-13-45T00:00:00", 1),
        _cursor("0001-01-01T00:00:00+05:00", "1"),
        _cursor("9999-12-31T23:00:00-05:00", "1"),
        "not-a-cursor",
    ],
)
def test_a_made_up_cursor_is_a_422_on_every_list(api, path, cursor):
    error = assert_error_shape(api.get(f"{path}?cursor={cursor}"), HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert "cursor" in error["details"]


def test_a_cursor_works_only_on_its_own_list_and_unedited(api, user, make_key):
    for number in range(3):
        make_key(user, name=f"key {number}")
    cursor = api.get("/api/v1/keys?limit=1").json()["nextCursor"]
    assert api.get(f"/api/v1/keys?limit=1&cursor={cursor}").status_code == HTTPStatus.OK
    assert api.get(f"/api/v1/jobs?cursor={cursor}").status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    signature = cursor.rpartition(":")[2]
    edited = _cursor("2099-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000") + ":" + signature
    assert api.get(f"/api/v1/keys?cursor={edited}").status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def call_wsgi(
    body: bytes, *, terminated: bool = True, content_type: str = "application/json", query: str = ""
) -> tuple[str, bytes]:
    """POST /api/v1/echo through the WSGI application gunicorn serves, as a chunked body."""
    from flixly_site.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/echo",
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": content_type,
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": terminated,
        "wsgi.url_scheme": "http",
    }
    statuses = []
    content = b"".join(application(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    return statuses[0], content


# undefined, punycode and idna are text encodings whose failures are a plain UnicodeError, which Django does
# not catch while decoding the query string: the server's own HTML 500.
@pytest.mark.parametrize(
    "charset", ["rot13", "base64", "hex", "zlib", "no-such-charset", "undefined", "punycode", "idna"]
)
def test_a_charset_that_cannot_decode_a_query_string_is_ignored_like_an_unknown_one(charset):
    content_type = f"application/json; charset={charset}"
    status, content = call_wsgi(b'{"a": 1}', content_type=content_type, query="x..y=1")
    assert status.startswith("200")
    assert json.loads(content) == {"data": {"a": 1}}


@pytest.mark.parametrize("charset", ["utf-16", "utf-32", "utf-8", "latin-1"])
def test_a_body_in_a_declared_text_charset_is_read_in_it(charset):
    status, content = call_wsgi('{"a": "é"}'.encode(charset), content_type=f"application/json; charset={charset}")
    assert status.startswith("200")
    assert json.loads(content) == {"data": {"a": "é"}}


def test_a_chunked_json_body_is_read():
    status, content = call_wsgi(b'{"model": "flux-dev"}')
    assert status.startswith("200")
    assert json.loads(content) == {"data": {"model": "flux-dev"}}


def test_a_body_the_server_did_not_mark_as_ended_is_left_alone():
    # Without wsgi.input_terminated reading to the end could block forever: the body stays unread.
    status, content = call_wsgi(b'{"model": "flux-dev"}', terminated=False)
    assert status.startswith("200")
    assert json.loads(content) == {"data": {}}


def test_a_chunked_body_over_the_limit_is_a_413(settings):
    settings.FLIXLY_MAX_BODY_BYTES = 1024
    status, content = call_wsgi(b'{"a": "' + b"x" * 2000 + b'"}')
    assert status.startswith("413")
    assert json.loads(content)["error"]["code"] == "payload_too_large"


def test_well_formed_json_passes_through(client):
    response = client.post("/api/v1/echo", data={"a": 1}, content_type="application/json")
    assert response.json() == {"data": {"a": 1}}


def test_oversized_body_is_refused_with_413(client, settings):
    settings.FLIXLY_MAX_BODY_BYTES = 1024
    response = client.post("/api/v1/echo", data="x" * 2048, content_type="application/json")
    assert_error_shape(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")


def test_crash_is_a_generic_500_without_internals(client):
    client.raise_request_exception = False
    response = client.get("/api/v1/crash")
    error = assert_error_shape(response, HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error")
    assert "passwd" not in response.content.decode()
    assert "Traceback" not in error["message"]


def test_crash_in_debug_still_answers_json(client, settings):
    settings.DEBUG = True
    client.raise_request_exception = False
    response = client.get("/api/v1/crash")
    assert_error_shape(response, HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error")
    assert "passwd" not in response.content.decode()


@pytest.mark.parametrize("path", ["/api/v1/database-down", "/api/v1/database-down-page"])
def test_a_database_that_cannot_be_reached_is_a_503_naming_nothing_of_it(client, path):
    error = assert_error_shape(client.get(path), HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable")
    assert "10.0.0.5" not in error["message"] and "details" not in error


def test_a_keyed_request_while_the_database_is_down_is_a_503(api, monkeypatch):
    from django.db import connection

    def refuse():
        raise unreachable()

    monkeypatch.setattr(connection, "cursor", refuse)
    assert_error_shape(api.get("/api/v1/jobs"), HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable")


@pytest.mark.parametrize(
    "cause",
    [
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        sqlite3.OperationalError("no such table: generation_job"),
        None,
    ],
    ids=["deadlock", "statement-timeout", "missing-table", "no-cause"],
)
def test_a_database_error_that_is_no_outage_is_a_500_not_a_503(api, monkeypatch, cause):
    from django.db import connection

    def fail():
        error = OperationalError(str(cause))
        error.__cause__ = cause
        raise error

    monkeypatch.setattr(connection, "cursor", fail)
    assert_error_shape(api.get("/api/v1/jobs"), HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error")


def test_every_response_carries_a_generated_request_id(client):
    response = client.get("/api/v1/health")
    assert len(response["X-Request-Id"]) == 32


def test_a_sane_incoming_request_id_is_echoed(client):
    response = client.get("/api/v1/nope", headers={"X-Request-Id": "trace-123.abc"})
    assert response["X-Request-Id"] == "trace-123.abc"


def test_an_unsafe_incoming_request_id_is_replaced(client):
    response = client.get("/api/v1/health", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert "<" not in response["X-Request-Id"]


def test_every_check_names_a_failure_without_details_under_its_own_name():
    from flixly_site.errors import ValidationFailed, every_check

    def refuse() -> None:
        raise ValidationFailed("No good.")

    with pytest.raises(ValidationFailed) as raised:
        every_check(good=lambda: 1, bad=refuse)
    assert raised.value.details == {"bad": ["No good."]}


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/models", "/api/v1/jobs", "/openai/v1/models"])
def test_over_a_thousand_query_parameters_is_a_422_not_a_500(api, path):
    response = api.get(f"{path}?{'a&' * 1001}")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["error"]["code"] == "validation_error"
    assert "1,000" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "files"), [({f"f{n}": "x" for n in range(1001)}, {}), ({}, {f"f{n}": b"x" for n in range(101)})]
)
def test_a_multipart_body_with_too_many_parts_is_a_422_not_a_500(api, fields, files):
    from django.core.files.uploadedfile import SimpleUploadedFile

    uploads = {name: SimpleUploadedFile(f"{name}.png", data) for name, data in files.items()}
    response = api.post("/api/v1/generate", {**fields, **uploads})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("path", ["/api/v1/generate", "/api/v1/keys"])
def test_a_422_names_a_few_unknown_fields_briefly_not_all_of_them(api, path):
    body = {"a" * 5000: 1, **{f"extra{n:03}": 1 for n in range(300)}}  # the long name sorts first: it is named
    response = api.post(path, body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    details = response.json()["error"]["details"]
    unknown = {name: messages for name, messages in details.items() if messages[0].startswith("Unknown field")}
    assert len(unknown) == 10 and "a" * 64 + "…" in unknown
    assert details["body"] == ["And 291 more unknown fields."]
    assert len(response.content) < 5000


@pytest.mark.parametrize("debug", [False, True])
def test_a_host_this_server_does_not_answer_to_is_a_400_bad_request(client, settings, debug):
    settings.DEBUG = debug
    response = client.get("/api/v1/health", HTTP_HOST="evil.example.com")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    error = response.json()["error"]
    assert (error["code"], error["status"]) == ("bad_request", 400)
    if not debug:  # Django's debug page stands in for handler400: the envelope then names only the status
        assert error["message"] == "This server does not answer to that Host header."


@pytest.mark.parametrize("path", ["/api/v1/health", "/"])
def test_a_bad_host_is_one_warning_line_not_an_error_with_a_traceback(client, caplog, path):
    caplog.set_level(logging.INFO)
    client.get(path, HTTP_HOST="scanner.example.com")
    [record] = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert "scanner.example.com" in record.getMessage()


# Every GET of /api/v1 but the health check, which load balancers call with whatever they add.
QUERIED_PATHS = [
    "/api/v1/models",
    "/api/v1/models/local-image",
    "/api/v1/jobs",
    "/api/v1/jobs/export.csv",
    "/api/v1/usage",
    "/api/v1/credits/ledger",
    "/api/v1/keys",
    "/api/v1/webhook/deliveries",
]


@pytest.mark.parametrize("path", QUERIED_PATHS)
def test_an_unknown_query_parameter_is_a_422_naming_it(api, path):
    error = assert_error_shape(api.get(f"{path}?stauts=failed"), HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert list(error["details"]) == ["stauts"]


def test_the_422_for_a_misspelt_filter_says_which_ones_the_list_takes(api):
    error = api.get("/api/v1/jobs?stauts=failed").json()["error"]
    [message] = error["details"]["stauts"]
    assert "status" in message and "createdAfter" in message and "cursor" in message


@pytest.mark.parametrize("path", ["/api/v1/jobs/00000000-0000-0000-0000-000000000000/cancel", "/api/v1/webhook/test"])
def test_a_post_refuses_unknown_query_parameters_too(api, path):
    assert_error_shape(api.post(f"{path}?force=true"), HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


@pytest.mark.parametrize(
    ("path", "body"), [("/api/v1/keys", {"name": "CI"}), ("/api/v1/generate", {"model": "x"}), ("/api/v1/jobs", {})]
)
def test_a_post_refuses_the_query_parameters_only_its_get_reads(api, path, body):
    """`?limit=` pages the key list; on the create it would be read as nothing at all."""
    response = api.post(f"{path}?limit=5", body, content_type="application/json")
    if response.status_code != HTTPStatus.METHOD_NOT_ALLOWED:
        error = assert_error_shape(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
        assert list(error["details"]) == ["limit"]
    assert not ApiKey.objects.filter(name="CI").exists()


@pytest.mark.parametrize(
    ("query", "named"),
    [("status=failed&status=completed", "status"), ("limit=5&limit=50", "limit"), ("type=CHAT&type=", "type")],
)
def test_a_query_parameter_given_twice_is_a_422_not_the_last_one_silently(api, query, named):
    """Each parameter takes one value: `?status=failed&status=completed` answering completed jobs only would
    look like a filter that works."""
    path = "/api/v1/models" if named == "type" else "/api/v1/jobs"
    error = assert_error_shape(api.get(f"{path}?{query}"), HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert error["details"] == {named: [f"Give '{named}' once; it takes one value."]}


def test_an_unknown_query_parameter_is_checked_after_the_key(client):
    assert_error_shape(client.get("/api/v1/jobs?stauts=failed"), HTTPStatus.UNAUTHORIZED, "unauthorized")


@pytest.mark.parametrize("value", ["xml", "yaml", "api", "json"])
def test_a_format_query_parameter_is_an_unknown_one_not_a_missing_resource(api, value):
    error = assert_error_shape(
        api.get(f"/api/v1/jobs?format={value}"), HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error"
    )
    assert list(error["details"]) == ["format"]


def test_the_health_check_ignores_any_query_string(client):
    assert client.get("/api/v1/health?format=api&probe=lb").status_code == HTTPStatus.OK


def test_many_unknown_query_parameters_are_named_briefly(api):
    response = api.get("/api/v1/jobs?" + "&".join(f"extra{n:03}=1" for n in range(300)))
    details = assert_error_shape(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")["details"]
    assert len(details) == 11 and details["query"] == ["And 290 more unknown query parameters."]
