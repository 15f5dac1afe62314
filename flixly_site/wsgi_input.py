"""What Django cannot take from a request as the server hands it over, put right before Django sees it.

Chunked bodies: Django reads a body only as far as its Content-Length. A client that streams its body
(Transfer-Encoding: chunked) sends no Content-Length, so Django saw an empty body: a POST
/api/v1/generate then failed validation as if nothing had been sent. Where the server has already
removed the chunk framing and marks the input as ending (gunicorn sets wsgi.input_terminated), the body
is read here, up to one byte past the body limit, and handed on with its length: ApiBodyLimitMiddleware
then refuses an oversized one with the usual 413.

Charsets: Django ignores a Content-Type charset Python does not know, but takes one that names a codec
which cannot read a query string (rot13, base64, zlib, which are no text encodings; undefined, punycode,
idna, which fail with an error Django does not catch) and then fails decoding the query string before any
middleware runs: a 500 from the server, not in the API's error shape. Such a charset is ignored too.
"""

import codecs
import io
import re
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


CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\s;\"]*)\"?", re.IGNORECASE)


# Text encodings whose failures are a plain UnicodeError, not the UnicodeDecodeError Django catches (and then
# reads the query string as latin-1 instead).
RAISE_UNCAUGHT = {"undefined", "punycode", "idna"}


def _usable_charset(name: str) -> bool:
    """Whether Django can decode a query string and a form in this charset without a 500."""
    try:
        codec = codecs.lookup(name)
    except LookupError:
        return True  # unknown: Django ignores it itself
    # _is_text_encoding: what str.encode itself checks
    return codec._is_text_encoding and codec.name not in RAISE_UNCAUGHT


class TextCharsetsOnly:
    def __init__(self, app: WSGIApp):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        content_type = environ.get("CONTENT_TYPE", "")
        match = CHARSET.search(content_type) if "charset" in content_type.lower() else None
        if match and not _usable_charset(match.group(1)):
            environ["CONTENT_TYPE"] = content_type[: match.start()] + content_type[match.end() :]
        return self.app(environ, start_response)
