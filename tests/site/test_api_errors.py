from http import HTTPStatus

import pytest
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


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


urlpatterns = [
    path("api/v1/echo", EchoApi.as_view()),
    path("api/v1/crash", CrashApi.as_view()),
    path("", include("flixly_site.urls")),
]

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


def test_unknown_page_outside_the_api_stays_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"].startswith("text/html")


def test_wrong_method_is_a_json_405(client):
    error = assert_error_shape(client.delete("/api/v1/health"), HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed")
    assert "DELETE" in error["message"]


def test_malformed_json_is_a_validation_error(client):
    response = client.post("/api/v1/echo", data="{not json", content_type="application/json")
    error = assert_error_shape(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert "body" in error["details"]


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


def test_every_response_carries_a_generated_request_id(client):
    response = client.get("/api/v1/health")
    assert len(response["X-Request-Id"]) == 32


def test_a_sane_incoming_request_id_is_echoed(client):
    response = client.get("/api/v1/nope", headers={"X-Request-Id": "trace-123.abc"})
    assert response["X-Request-Id"] == "trace-123.abc"


def test_an_unsafe_incoming_request_id_is_replaced(client):
    response = client.get("/api/v1/health", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert "<" not in response["X-Request-Id"]
