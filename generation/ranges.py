"""Single byte ranges (RFC 9110 section 14) for served outputs, so audio and video players can seek.

Django's FileResponse always sends the whole file. A request naming one satisfiable range gets a 206
with that slice; one past the end gets a 416; anything else (several ranges, bad syntax, If-Range)
gets the whole file, as the RFC allows a server to.
"""

import re
from collections.abc import Iterator
from typing import IO

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse

SINGLE_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$", re.ASCII)  # 19 digits: past any file's size
CHUNK_BYTES = 64 * 1024


def _requested(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of the one range asked for, clipped to the file; None to send it all.
    Raises ValueError for a range no byte of the file is in (it starts past the end, or the file is empty)."""
    match = SINGLE_RANGE.match(header.replace(" ", ""))
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # a suffix: the last N bytes
        if int(last) == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(0, size - int(last)), size - 1
    if last != "" and int(last) < int(first):
        return None
    if int(first) >= size:
        raise ValueError("range starts past the end")
    return int(first), min(size - 1, int(last)) if last else size - 1


def _slice(file: IO[bytes], first: int, last: int) -> Iterator[bytes]:
    with file:
        file.seek(first)
        left = last - first + 1
        while left > 0:
            chunk = file.read(min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def ranged_file_response(request: HttpRequest, file: IO[bytes], size: int, content_type: str) -> HttpResponse:
    header = request.META.get("HTTP_RANGE")
    try:
        wanted = None if header is None or "HTTP_IF_RANGE" in request.META else _requested(header, size)
    except ValueError:
        file.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    else:
        if wanted is None:
            response = FileResponse(file, content_type=content_type)
        else:
            first, last = wanted
            response = StreamingHttpResponse(_slice(file, first, last), status=206, content_type=content_type)
            response._resource_closers.append(file.close)  # also when the slice is never read
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
            response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    return response
