"""A tiny threaded HTTP server on 127.0.0.1 that fakes an upstream API, plus the media files fakes serve.

Subclasses implement route(request) -> Response. The base checks the Authorization header, serves
registered files under /files/ (without auth, like a CDN), records every request and can fail on demand.
"""

import io
import json
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import imageio_ffmpeg
from PIL import Image


class QuietServer(ThreadingHTTPServer):
    """A threaded server that does not print the client hanging up on it: tests that time out or cap a
    download drop their connection on purpose. Any other error still prints."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipe, ConnectionReset, ...
            super().handle_error(request, client_address)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    status: int = 200
    body: bytes | list[bytes] = b""  # a list is streamed chunk by chunk without a Content-Length
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode())


class FakeServer:
    expected_auth: str | None = None  # the exact Authorization value required; None accepts anything

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.fail_next_submit_with: int | None = None
        self.stream_files = False  # serve /files/ without Content-Length, to exercise the byte-counting cap
        self.delay_seconds = 0.0  # stall API answers (not files), to exercise client timeouts
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> "FakeServer":
        self._httpd = QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._httpd is not None
        assert self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "use the fake as a context manager"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # --- helpers for subclasses and tests --------------------------------------------------------
    def add_file(self, name: str, data: bytes, content_type: str) -> str:
        self.files[name] = (data, content_type)
        return f"{self.base_url}/files/{name}"

    def take_submit_failure(self) -> Response | None:
        """Call from a submit route: answers with the configured error status once."""
        status, self.fail_next_submit_with = self.fail_next_submit_with, None
        return json_response({"detail": "injected failure"}, status) if status else None

    def received(self, method: str, path_contains: str = "") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and path_contains in r.path]

    def route(self, request: Recorded) -> Response:
        raise NotImplementedError

    # --- dispatch --------------------------------------------------------------------------------
    def dispatch(self, request: Recorded) -> Response:
        with self._lock:
            self.requests.append(request)
        if request.path.startswith("/files/"):
            return self._file(request.path.removeprefix("/files/"))
        time.sleep(self.delay_seconds)
        if self.expected_auth is not None and request.headers.get("authorization") != self.expected_auth:
            return json_response({"detail": "Unauthenticated"}, 401)
        return self.route(request)

    def _file(self, name: str) -> Response:
        if name not in self.files:
            return json_response({"detail": "Not found"}, 404)
        data, content_type = self.files[name]
        return Response(
            200, [data[i : i + 65536] for i in range(0, len(data), 65536)] if self.stream_files else data, content_type
        )


def _handler_for(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: no keep-alive bookkeeping needed

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Recorded(self.command, url.path, parse_qs(url.query), headers, self.rfile.read(length))
            response = fake.dispatch(request)
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if isinstance(response.body, bytes):
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            for chunk in [response.body] if isinstance(response.body, bytes) else response.body:
                self.wfile.write(chunk)
                self.wfile.flush()

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - names http.server dispatches to

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


# --- real, small media files -------------------------------------------------------------------------
def make_png(width: int = 64, height: int = 48, color: str = "purple") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def make_wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


@cache
def make_mp4() -> bytes:
    """A one-second 64x64 H.264 clip, encoded once per test session."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=64x64:d=1",
        ]
        command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        return path.read_bytes()
