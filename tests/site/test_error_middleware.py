"""Errors raised outside DRF's views on /api paths (a plain Django view, a middleware) reach the client through
ApiErrorEnvelopeMiddleware: with the same headers and the same log hygiene as DRF's exception handler."""

import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from flixly_site.errors import RateLimited, ServiceUnavailable, Unauthorized
from flixly_site.middleware import ApiErrorEnvelopeMiddleware

KEY_IN_PATH = "/api/v1/keys/flx_live_abcdefghijklmnopqrstuvwxyz0123456789wxyz"


@pytest.fixture
def middleware():
    return ApiErrorEnvelopeMiddleware(lambda request: HttpResponse())


def test_an_error_keeps_its_headers(middleware):
    request = RequestFactory().get("/api/v1/jobs")
    error = RateLimited("Too many requests. Retry in 7 seconds.", headers={"Retry-After": "7"})
    response = middleware.process_exception(request, error)
    assert response.status_code == 429 and response["Retry-After"] == "7"


def test_a_401_names_the_scheme_that_would_work(middleware):
    response = middleware.process_exception(RequestFactory().get("/api/v1/jobs"), Unauthorized("No key."))
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


class LoggedUnavailable(ServiceUnavailable):
    log_level = "warning"


@pytest.mark.parametrize("error", [LoggedUnavailable("Down."), KeyError("bug")])
def test_the_log_shows_a_key_pasted_into_the_path_by_its_last_four_only(middleware, caplog, error):
    with caplog.at_level(logging.INFO):
        middleware.process_exception(RequestFactory().get(KEY_IN_PATH), error)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "wxyz" in logged and "abcdefghij" not in logged


def test_djangos_own_line_for_a_5xx_hides_a_pasted_key_too(caplog):
    # django.request logs each 5xx our handlers did not log themselves, with the path as it came.
    with caplog.at_level(logging.ERROR, logger="django.request"):
        logging.getLogger("django.request").error("%s: %s", "Service Unavailable", KEY_IN_PATH)
    [record] = caplog.records
    assert record.getMessage() == "Service Unavailable: /api/v1/keys/flx_live_…wxyz"
