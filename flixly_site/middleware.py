"""Project-wide middleware: request ids, body limits, the API error envelope and private caching of signed-in pages."""

import json
import logging
import re
import uuid
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

from flixly_site.errors import (
    OPENAI_PREFIX,
    ApplicationError,
    as_application_error,
    error_json,
    error_logged,
    is_api_path,
    with_error_headers,
    with_openai_fields,
)
from flixly_site.logs import loggable_path

logger = logging.getLogger("flixly.errors")

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

CODE_FOR_STATUS = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.UNAUTHORIZED: "unauthorized",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.CONFLICT: "conflict",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.UNPROCESSABLE_ENTITY: "validation_error",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limit_exceeded",
    HTTPStatus.SERVICE_UNAVAILABLE: "service_unavailable",
}

Handler = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    """Echo a sane incoming X-Request-Id, else make one; it goes on every response and log line."""

    def __init__(self, get_response: Handler):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request.request_id = incoming if SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id
        return response


class ApiBodyLimitMiddleware:
    """Refuse an oversized API body from its Content-Length, before anything reads it."""

    def __init__(self, get_response: Handler):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path) and self._declared_length(request) > settings.FLIXLY_MAX_BODY_BYTES:
            limit_mb = settings.FLIXLY_MAX_BODY_BYTES // (1024 * 1024)
            return error_json("payload_too_large", 413, f"The request body is over the {limit_mb} MB limit.")
        return self.get_response(request)

    @staticmethod
    def _declared_length(request: HttpRequest) -> int:
        try:
            return int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0


class ApiErrorEnvelopeMiddleware:
    """Under /api/ and /openai/, no error ever leaves as HTML or a debug page.

    DRF views already answer in the contract's shape; this catches what happens outside
    them (unknown URLs, CSRF failures, crashes in middleware, DEBUG's technical pages).
    """

    def __init__(self, get_response: Handler):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api_path(request.path) or response.status_code < 400:
            return response
        if not response.get("Content-Type", "").startswith("application/json"):
            response = self._envelope(response.status_code, response)
        return self._openai_fields(response) if request.path.startswith(OPENAI_PREFIX) else response

    @staticmethod
    def _openai_fields(response: HttpResponse) -> HttpResponse:
        if response.streaming:  # a stream's errors are its own events, already in OpenAI's shape
            return response
        body = json.loads(response.content)
        body["error"] = with_openai_fields(body["error"])
        response.content = json.dumps(body)
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_path(request.path):
            return None
        error = as_application_error(exception)
        if error is None:
            path = loggable_path(request.path)
            logger.exception("Unhandled error on %s %s", request.method, path, exc_info=exception)
            error = ApplicationError()
        response = error_json(error.code, error.status, error.message, error.details)
        return with_error_headers(error, error_logged(error, request, response))

    @staticmethod
    def _envelope(status: int, original: HttpResponse) -> HttpResponse:
        code = CODE_FOR_STATUS.get(status, "internal_error" if status >= 500 else "bad_request")
        message = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        replacement = error_json(code, status, f"{message}.")
        for header in ("Retry-After", "Allow"):
            if header in original:
                replacement[header] = original[header]
        return replacement


class PrivatePagesMiddleware:
    """A signed-in page (balances, keys, jobs) is for its reader only: no shared cache (a CDN, a proxy) may
    keep it, nor the browser's disk. Responses that set their own caching (outputs, the API) keep theirs."""

    def __init__(self, get_response: Handler):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control") and not is_api_path(request.path) and request.user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
