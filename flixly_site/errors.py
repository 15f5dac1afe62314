"""The API error contract: every error under /api/ and /openai/ has one JSON shape.

{"error": {"code": "...", "status": 402, "message": "...", "details": {...}}}

Domain code raises ApplicationError subclasses; DRF and Django errors are mapped here, once.
"""

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import psycopg
from django.core.exceptions import (
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.log import log_response
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response

from flixly_site.logs import loggable_path

logger = logging.getLogger("flixly.errors")

API_PREFIXES = ("/api/", "/openai/")
API_ROOTS = ("/api", "/openai")


AUTHENTICATE = 'Bearer realm="api"'


DO_NOT_RETRY = {"x-should-retry": "false"}  # the openai client retries 5xx answers unless told not to


class ApplicationError(Exception):
    """A failure the API reports to the caller with a contract code and status."""

    code = "internal_error"
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    default_message = "Something went wrong on our side."
    # None: django.request's rule, which logs every 5xx at ERROR and so pages an operator. An error the request
    # itself explains (it asked for a model this server does not run) names its own, lower, level.
    log_level: str | None = None

    def __init__(self, message: str | None = None, *, details: dict | None = None, headers: dict | None = None):
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def as_text(self) -> str:
        """Every message in `details` (or the main one) as one line, for pages that show the error."""
        return " ".join(self.all_messages())

    def all_messages(self) -> list[str]:
        return [m for messages in (self.details or {}).values() for m in messages] or [self.message]


class Unauthorized(ApplicationError):
    code, status, default_message = "unauthorized", HTTPStatus.UNAUTHORIZED, "Authentication required."


class Forbidden(ApplicationError):
    code, status, default_message = "forbidden", HTTPStatus.FORBIDDEN, "You do not have permission for this."


class NotFound(ApplicationError):
    code, status, default_message = "not_found", HTTPStatus.NOT_FOUND, "The requested resource does not exist."


class Conflict(ApplicationError):
    code, status, default_message = "conflict", HTTPStatus.CONFLICT, "The request conflicts with the current state."


class ValidationFailed(ApplicationError):
    code = "validation_error"
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    default_message = "The request failed validation: see details."


class BadRequest(ApplicationError):
    """A request HTTP itself finds malformed (a Host this server does not answer to), before any body is read."""

    code, status, default_message = "bad_request", HTTPStatus.BAD_REQUEST, "The request is malformed."


class PayloadTooLarge(ApplicationError):
    code, status, default_message = (
        "payload_too_large",
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "The request is too large.",
    )


class RateLimited(ApplicationError):
    code, status, default_message = "rate_limit_exceeded", HTTPStatus.TOO_MANY_REQUESTS, "Too many requests."


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    default_message = "A service we depend on is unavailable; nothing was charged. Try again shortly."


def checked_as(invalid: type[Exception], check: Callable[[Any], Any], value: Any) -> Any:
    """`check(value)` for a form or serializer field: a service's ValidationFailed comes out as `invalid`
    (that framework's ValidationError) with all its messages."""
    try:
        return check(value)
    except ValidationFailed as error:
        raise invalid(error.all_messages()) from None


def every_check(**checks: Callable[[], Any]) -> dict[str, Any]:
    """Each named check's value, all of them run: the 422 names every field that failed, not just the first."""
    values, details = {}, {}
    for name, check in checks.items():
        try:
            values[name] = check()
        except ValidationFailed as error:
            details.update(error.details or {name: [error.message]})
    if details:
        raise ValidationFailed(details=details)
    return values


def error_body(code: str, status: int, message: str, details: Any = None) -> dict:
    error: dict[str, Any] = {"code": code, "status": int(status), "message": message}
    if details:
        error["details"] = details
    return {"error": error}


OPENAI_PREFIX = "/openai/"
OPENAI_ERROR_TYPES = {
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    429: "rate_limit_error",
}


def with_openai_fields(error: dict) -> dict:
    """An error of the OpenAI-compatible surface, with OpenAI's `type` and `param` next to the contract's
    fields: clients written for OpenAI switch on them."""
    status = error["status"]
    kind = OPENAI_ERROR_TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")
    # A 422's details name request fields; other errors' details (a 402's price and balance) do not.
    field = next(iter(error.get("details") or {}), None) if status == HTTPStatus.UNPROCESSABLE_ENTITY else None
    return {**error, "type": kind, "param": None if field in ("non_field_errors", "body") else field}


def error_json(code: str, status: int, message: str, details: Any = None) -> JsonResponse:
    return JsonResponse(error_body(code, status, message, details), status=status)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path in API_ROOTS


def _flatten_messages(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [msg for value in detail.values() for msg in _flatten_messages(value)]
    if isinstance(detail, list):
        return [msg for item in detail for msg in _flatten_messages(item)]
    return [str(detail)]


def validation_details(detail: Any) -> dict[str, list[str]]:
    """DRF's nested error detail as field -> list of messages."""
    if isinstance(detail, dict):
        return {field: _flatten_messages(value) for field, value in detail.items()}
    return {"non_field_errors": _flatten_messages(detail)}


def _drf_error(exc: drf.APIException) -> ApplicationError:
    if isinstance(exc, drf.ValidationError):
        return ValidationFailed(details=validation_details(exc.detail))
    if isinstance(exc, drf.ParseError):
        return ValidationFailed(
            f"The request body could not be parsed: {exc.detail}", details={"body": [str(exc.detail)]}
        )
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return Unauthorized(str(exc.detail))
    if isinstance(exc, drf.PermissionDenied):
        return Forbidden(str(exc.detail))
    if isinstance(exc, drf.NotFound):
        return NotFound()
    if isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1)
        return RateLimited(f"Too many requests. Retry in {wait} seconds.", headers={"Retry-After": str(wait)})
    error = ApplicationError(str(exc.detail))
    error.status = exc.status_code
    error.code = {
        HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
        HTTPStatus.NOT_ACCEPTABLE: "not_acceptable",
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    }.get(exc.status_code, "bad_request")
    return error


# SQLSTATEs of a server that cannot serve this connection now: a connection exception (class 08), a server
# shutting down or starting up (57P01-57P03), too many connections (53300).
UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def database_unreachable(exc: Exception) -> bool:
    """Whether a database error is an outage to wait out (a 503), not a fault of the request's queries to look
    into (a deadlock, a statement timeout, a missing table: a 500)."""
    if isinstance(exc, InterfaceError):  # the connection is closed
        return True
    cause = exc.__cause__ if isinstance(exc, OperationalError) else None
    if not isinstance(cause, psycopg.OperationalError):
        return False
    return cause.sqlstate is None or cause.sqlstate.startswith(UNREACHABLE_STATES)  # None: no server answered


def as_application_error(exc: Exception) -> ApplicationError | None:
    if isinstance(exc, ApplicationError):
        return exc
    if database_unreachable(exc):
        # django.request logs the 503 without its cause: this line names it, for the operator only.
        logger.error("database unavailable: %s", exc)
        return ServiceUnavailable("The database is unavailable. Try again shortly.")
    if isinstance(exc, Http404):
        return NotFound()
    if isinstance(exc, PermissionDenied):
        return Forbidden()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):  # Django's DATA_UPLOAD_MAX_NUMBER_* limits
        return ValidationFailed(
            "The request has too many parts: at most 1,000 query parameters or form fields, and 100 files."
        )
    if isinstance(exc, drf.APIException):
        return _drf_error(exc)
    return None


def error_logged(error: ApplicationError, request: HttpRequest | None, response: HttpResponse) -> HttpResponse:
    """Log an error with its own level once, so that django.request does not log it again at its own."""
    if error.log_level is not None and request is not None:
        log_response(
            "%s: %s (%s)",
            response.reason_phrase,
            loggable_path(request.path),
            error.message,
            response=response,
            request=request,
            logger=logger,
            level=error.log_level,
        )
    return response


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: map every error to the contract's shape."""
    error = as_application_error(exc)
    if error is None:
        logger.exception("Unhandled API error", exc_info=exc)
        error = ApplicationError()
    response = Response(error_body(error.code, error.status, error.message, error.details), status=error.status)
    return with_error_headers(error, error_logged(error, getattr(context.get("request"), "_request", None), response))


def with_error_headers(error: ApplicationError, response: HttpResponse) -> HttpResponse:
    """The error's own headers (Retry-After, x-should-retry) on its answer, whoever builds it."""
    for name, value in error.headers.items():
        response[name] = value
    if error.status == 401:  # RFC 9110: a 401 names the scheme that would work
        response["WWW-Authenticate"] = AUTHENTICATE
    return response


def _page_or_json(request: HttpRequest, error: ApplicationError, page_handler) -> HttpResponse:
    if is_api_path(request.path):
        return error_json(error.code, error.status, error.message)
    return page_handler()


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, DisallowedHost):
        error = BadRequest("This server does not answer to that Host header.")
    else:
        error = as_application_error(exception) or BadRequest()
    return _page_or_json(request, error, lambda: defaults.bad_request(request, exception))


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_json(request, Forbidden(), lambda: defaults.permission_denied(request, exception))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_json(request, NotFound(), lambda: defaults.page_not_found(request, exception))


def handler500(request: HttpRequest) -> HttpResponse:
    return _page_or_json(request, ApplicationError(), lambda: defaults.server_error(request))
