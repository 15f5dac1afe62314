"""Chunked request bodies for Django, which reads a body only as far as its Content-Length.

A client that streams its body (Transfer-Encoding: chunked) sends no Content-Length, so Django saw an
empty body: a POST /api/v1/generate then failed validation as if nothing had been sent. Where the
server has already removed the chunk framing and marks the input as ending (gunicorn sets
wsgi.input_terminated), the body is read here, up to one byte past the body limit, and handed on
with its length: ApiBodyLimitMiddleware then refuses an oversized one with the usual 413.
"""

import io
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

WSGIApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]


def is_chunked(environ: dict[str, Any]) -> bool:
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH")


class ChunkedBodies:
    def __init__(self, app: WSGIApp):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if is_chunked(environ) and environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read(settings.FLIXLY_MAX_BODY_BYTES + 1)
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.app(environ, start_response)
