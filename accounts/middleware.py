"""Attach the authenticated-response headers and log every API request, in one place."""

import logging
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.ratelimit import RateWindow, account_bucket, ratelimit_peek
from flixly_site.errors import ServiceUnavailable, is_api_path
from flixly_site.logs import loggable_path

logger = logging.getLogger("flixly.api")

ResponseHook = Callable[[HttpRequest, HttpResponse], None]


def days_left(expires_at: datetime) -> int:
    """Whole days until `expires_at`, a started day counted: a new 90-day key says 90, and 0 means expired."""
    return max(0, math.ceil((expires_at - timezone.now()) / timedelta(days=1)))


def _uncounted_window(user) -> RateWindow | None:
    # A session's CSRF failure: the window as it stands, without counting the refused request.
    if not user.is_authenticated:
        return None
    try:
        return ratelimit_peek(bucket=account_bucket(user.pk), limit=user.plan.requests_per_minute)
    except ServiceUnavailable:
        return None  # an error response already; it goes out without these headers


class ApiRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        # Higher apps (billing's X-Credit-Balance) plug in through settings, never by an import from here.
        self.hooks: list[ResponseHook] = [import_string(path) for path in settings.FLIXLY_API_RESPONSE_HOOKS]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_path(request.path):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        if getattr(request, "flixly_user", None) is not None:
            self._attach_headers(request, response)
        self._log(request, response, started)
        return response

    def _attach_headers(self, request: HttpRequest, response: HttpResponse) -> None:
        window = getattr(request, "flixly_rate", None)
        if window is None and response.status_code == 403:  # refused before the throttle counted it
            window = _uncounted_window(request.flixly_user)
        if window is not None:
            response["X-RateLimit-Limit"] = str(window.limit)
            response["X-RateLimit-Remaining"] = str(window.remaining)
            response["X-RateLimit-Reset"] = str(window.reset)
            if response.status_code == 429 and "Retry-After" not in response:
                response["Retry-After"] = str(window.reset)
        key = getattr(request, "flixly_key", None)
        if key is not None:
            response["X-Token-Expires"] = str(days_left(key.expires_at))
        for hook in self.hooks:
            hook(request, response)

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, started: float) -> None:
        user = getattr(request, "flixly_user", None)
        key = getattr(request, "flixly_key", None)
        logger.info(
            "api request_id=%s account=%s key=%s method=%s path=%s status=%s latency_ms=%.1f",
            getattr(request, "request_id", "-"),
            user.pk if user is not None else "-",
            key.masked if key is not None else ("session" if user is not None else "-"),
            request.method,
            loggable_path(request.path),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
