"""The SSRF guard: URL checks against fake DNS answers, and fetches from loopback servers (never anything else)."""

import contextlib
import io
import itertools
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from generation import outbound
from generation.outbound import FetchFailed, NotAnImage, TooLarge, UnsafeUrl, check_url, fetch_bytes, fetch_image
from tests.fakes.server import QuietServer


# --- fake DNS --------------------------------------------------------------------------------------------
class FakeDns:
    """Stands in for socket.getaddrinfo: listed names get fixed answers, anything else goes to the real resolver."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.records: dict[str, list[str]] = {}  # an empty list means NXDOMAIN
        self.rebind_to: dict[str, list[str]] = {}  # answers from the second lookup on
        self.lookups: list[str] = []

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple]:
        if host not in self.records:
            return self.real(host, port, *args, **kwargs)
        addresses = self.rebind_to.get(host, []) if host in self.lookups else []
        self.lookups.append(host)
        addresses = addresses or self.records[host]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [_record(address, int(port)) for address in addresses]


def _record(address: str, port: int) -> tuple:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


@pytest.fixture
def dns(monkeypatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(autouse=True)
def _production_defaults(settings):
    settings.FLIXLY_OUTBOUND_ALLOW_HTTP = False
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = False


@pytest.fixture
def local_dev(settings):
    """What tests and local development run with: loopback fakes over plain http."""
    settings.FLIXLY_OUTBOUND_ALLOW_HTTP = True
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = True


# --- a loopback server ------------------------------------------------------------------------------------
@dataclass
class Route:
    status: int = 200
    body: bytes | Iterable[bytes] = b""  # an iterable is sent with Transfer-Encoding: chunked
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class LoopbackServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, str]] = []  # (path, Host header) per request
        self.scheme = "https" if tls else "http"
        self._httpd = QuietServer(("127.0.0.1", 0), _handler_for(self))
        if tls:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01})

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server.seen.append((self.path, self.headers.get("Host", "")))
            route = server.routes.get(self.path, Route(404, b"not found", "text/plain"))
            time.sleep(route.delay)
            chunked = not isinstance(route.body, bytes)
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Connection", "close")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            elif "Content-Length" not in route.headers:
                self.send_header("Content-Length", str(len(route.body)))
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.close_connection = True
            # The client may hang up on purpose, e.g. at its size cap.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._write(route.body, chunked)

        def _write(self, body: bytes | Iterable[bytes], chunked: bool) -> None:
            if not chunked:
                self.wfile.write(body)
                return
            for chunk in body:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@pytest.fixture
def server(local_dev) -> Iterator[LoopbackServer]:
    with LoopbackServer() as loopback:
        yield loopback


# --- images -------------------------------------------------------------------------------------------
def make_png(width: int = 32, height: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but carries no pixel data: what a decompression bomb opens with."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


# --- check_url: refusals ---------------------------------------------------------------------------------
REFUSED_ADDRESSES = [
    "https://127.0.0.1/image.png",
    "https://localhost/image.png",
    "https://[::1]/image.png",
    "https://0.0.0.0/image.png",
    "https://[::]/image.png",
    "https://10.1.2.3/image.png",
    "https://172.16.0.1/image.png",
    "https://172.31.255.254/image.png",
    "https://192.168.1.1/image.png",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/image.png",
    "https://100.100.100.200/image.png",
    "https://[fd00::1]/image.png",
    "https://[fd00:ec2::254]/image.png",
    "https://[fe80::1]/image.png",
    "https://[::ffff:127.0.0.1]/image.png",
    "https://[2002:7f00:1::]/image.png",  # 6to4 wrapping 127.0.0.1
    "https://[2002:a9fe:a9fe::]/image.png",  # 6to4 wrapping 169.254.169.254
    "https://224.0.0.1/image.png",
    "https://[ff02::1]/image.png",
    "https://240.0.0.1/image.png",
    "https://255.255.255.255/image.png",
    "https://2130706433/image.png",  # decimal 127.0.0.1
    "https://0x7f000001/image.png",  # hex 127.0.0.1
    "https://0x7f.1/image.png",
    "https://017700000001/image.png",  # octal 127.0.0.1
    "https://127.1/image.png",
]


@pytest.mark.parametrize("url", REFUSED_ADDRESSES)
def test_a_url_at_a_non_public_address_is_refused(url):
    with pytest.raises(UnsafeUrl, match="resolves to a private address, which is not allowed"):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.216.34/image.png", "must use https"),
        ("ftp://93.184.216.34/image.png", "must use https"),
        ("file:///etc/passwd", "must use https"),
        ("//93.184.216.34/image.png", "must use https"),
        ("https://user:secret@93.184.216.34/image.png", "must not contain a user name or password"),
        ("https://user@93.184.216.34/image.png", "must not contain a user name or password"),
        ("https://93.184.216.34\\@127.0.0.1/image.png", "must not contain a user name or password"),
        ("https:///image.png", "must include a host"),
        ("https://93.184.216.34:99999/image.png", "invalid port"),
        ("https://93.184.216.34:0/image.png", "invalid port"),
        ("https://93.184.216.34/image.png\n", "not a valid URL"),
        ("https://93.184.216.34/ima\tge.png", "not a valid URL"),
        ("https://93.184.216.34/" + "a" * 5000, "not a valid URL"),
    ],
)
def test_a_malformed_or_non_https_url_is_refused_with_a_clear_message(url, message):
    with pytest.raises(UnsafeUrl, match=message):
        check_url(url)


def test_the_label_names_the_url_in_messages():
    with pytest.raises(UnsafeUrl, match=r"^The image URL must use https\.$"):
        check_url("http://93.184.216.34/", label="The image URL")


def test_a_host_name_resolving_to_a_private_address_is_refused_without_naming_the_address(dns):
    dns.records["evil.example"] = ["10.0.0.5"]
    with pytest.raises(UnsafeUrl, match="resolves to a private address") as refused:
        check_url("https://evil.example/cat.png")
    assert "10.0.0.5" not in str(refused.value)


def test_a_host_name_with_one_public_and_one_private_record_is_refused(dns):
    dns.records["split.example"] = ["93.184.216.34", "192.168.0.10"]
    with pytest.raises(UnsafeUrl, match="private address"):
        check_url("https://split.example/cat.png")


def test_a_host_name_with_a_private_ipv6_record_is_refused(dns):
    dns.records["dual.example"] = ["93.184.216.34", "fd12:3456::1"]
    with pytest.raises(UnsafeUrl, match="private address"):
        check_url("https://dual.example/cat.png")


def test_an_unresolvable_host_is_refused(dns):
    dns.records["nowhere.example"] = []
    with pytest.raises(UnsafeUrl, match="host could not be resolved"):
        check_url("https://nowhere.example/cat.png")


def test_the_metadata_address_is_refused_even_when_private_addresses_are_allowed(settings, dns):
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = True
    dns.records["metadata.example"] = ["169.254.169.254"]
    for url in ("https://169.254.169.254/", "https://[fd00:ec2::254]/", "https://metadata.example/"):
        with pytest.raises(UnsafeUrl, match="private address"):
            check_url(url)
    assert check_url("https://127.0.0.1/").addresses == ("127.0.0.1",)


# --- check_url: what passes ----------------------------------------------------------------------------
def test_a_public_ip_literal_passes_and_is_described():
    resolved = check_url("https://93.184.216.34/cat.png?size=2#top")
    assert resolved == outbound.ResolvedUrl(
        url="https://93.184.216.34/cat.png?size=2#top",
        scheme="https",
        host="93.184.216.34",
        port=443,
        path_and_query="/cat.png?size=2",
        addresses=("93.184.216.34",),
    )


def test_a_public_host_name_passes_with_all_its_addresses(dns):
    dns.records["cdn.example"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34"]
    resolved = check_url("https://CDN.example:8443")
    assert (resolved.host, resolved.port, resolved.path_and_query) == ("cdn.example", 8443, "/")
    assert resolved.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")


def test_http_passes_only_when_allowed_and_the_argument_beats_the_setting(settings):
    assert check_url("http://93.184.216.34/", allow_http=True).port == 80
    settings.FLIXLY_OUTBOUND_ALLOW_HTTP = True
    assert check_url("http://93.184.216.34/").scheme == "http"
    with pytest.raises(UnsafeUrl, match="must use https"):
        check_url("http://93.184.216.34/", allow_http=False)


def test_with_private_addresses_allowed_but_http_off_an_http_url_is_still_refused(settings, server):
    settings.FLIXLY_OUTBOUND_ALLOW_HTTP = False
    with pytest.raises(UnsafeUrl, match="must use https"):
        fetch_bytes(server.url("/image.png"), max_bytes=1000)
    assert server.seen == []


def test_a_refused_url_is_never_connected_to(settings, server):
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(UnsafeUrl, match="private address"):
        fetch_bytes(server.url("/image.png"), max_bytes=1000)
    assert server.seen == []


# --- fetching ------------------------------------------------------------------------------------------
def test_a_png_is_fetched_and_returned(server):
    png = make_png()
    server.routes["/image.png"] = Route(body=png, content_type="image/png")
    assert fetch_image(server.url("/image.png")) == png
    fetched = fetch_bytes(server.url("/image.png"), max_bytes=len(png))
    assert (fetched.content, fetched.content_type) == (png, "image/png")


def test_a_body_declared_larger_than_the_limit_is_refused_before_it_is_read(server):
    # The body is far shorter than declared: had the client read it, it would fail as a broken response instead.
    server.routes["/big"] = Route(body=b"tiny", headers={"Content-Length": "100000000"})
    with pytest.raises(TooLarge, match="larger than the 1 MB limit"):
        fetch_bytes(server.url("/big"), max_bytes=2**20)


def test_a_body_over_the_limit_is_refused_while_it_streams_without_a_content_length(server):
    server.routes["/endless"] = Route(body=itertools.repeat(b"x" * 65536, 2000))  # 128 MB, chunked
    started = time.monotonic()
    with pytest.raises(TooLarge, match="larger than the 1,000 bytes limit"):
        fetch_bytes(server.url("/endless"), max_bytes=1000)
    assert time.monotonic() - started < 2


def test_an_image_over_five_megabytes_is_refused(server):
    server.routes["/big.png"] = Route(body=[b"\0" * 2**20] * 6, content_type="image/png")
    with pytest.raises(TooLarge, match="The image URL is larger than the 5 MB limit"):
        fetch_image(server.url("/big.png"))


def test_a_redirect_is_refused_and_not_followed(server):
    server.routes["/moved"] = Route(302, headers={"Location": server.url("/target")})
    server.routes["/target"] = Route(body=make_png(), content_type="image/png")
    with pytest.raises(UnsafeUrl, match="redirects are not followed"):
        fetch_image(server.url("/moved"))
    assert server.paths == ["/moved"]


def test_a_missing_file_raises_fetch_failed_with_the_status(server):
    with pytest.raises(FetchFailed, match=r"could not be fetched \(HTTP 404\)"):
        fetch_bytes(server.url("/missing.png"), max_bytes=1000)


def test_a_closed_port_raises_fetch_failed(local_dev):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed, match=r"^URL could not be fetched\.$"):
        fetch_bytes(f"http://127.0.0.1:{port}/image.png", max_bytes=1000)


def test_a_server_slower_than_the_timeout_raises_fetch_failed(server):
    server.routes["/slow"] = Route(body=b"late", delay=0.5)
    with pytest.raises(FetchFailed, match="could not be fetched"):
        fetch_bytes(server.url("/slow"), max_bytes=1000, timeout=0.1)


class DrippingServer:
    """Answers every request one byte every `interval` seconds: each read is quick, the whole answer is not."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "DrippingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            connection, _ = self._listener.accept()
            with connection:
                connection.recv(65536)
                answer = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"x" * 500 + b"\r\n\r\n"
                for byte in answer:
                    if self._stop.wait(self.interval):
                        return
                    connection.sendall(bytes([byte]))


@pytest.mark.parametrize("send", ["fetch", "post"])
def test_a_server_dripping_its_answer_is_cut_off_at_the_timeout(local_dev, send):
    with DrippingServer() as dripping:
        url = f"http://127.0.0.1:{dripping.port}/hook"
        started = time.monotonic()
        exchange = fetch_bytes if send == "fetch" else outbound.post_json
        arguments = {"max_bytes": 1000} if send == "fetch" else {"body": b"{}", "headers": {}}
        with pytest.raises(FetchFailed):
            exchange(url, timeout=0.5, **arguments)
        assert time.monotonic() - started < 1.5  # the answer would take 26 s, each byte well inside the timeout


def test_text_that_is_not_an_image_raises_not_an_image(server):
    server.routes["/notes.txt"] = Route(body=b"definitely not a picture\n" * 20, content_type="text/plain")
    with pytest.raises(NotAnImage, match="The image URL is not a readable image"):
        fetch_image(server.url("/notes.txt"))


def test_a_truncated_png_raises_not_an_image(server):
    server.routes["/cut.png"] = Route(body=make_png(200, 200)[:120], content_type="image/png")
    with pytest.raises(NotAnImage, match="not a readable image"):
        fetch_image(server.url("/cut.png"))


@pytest.mark.parametrize(("width", "height"), [(20000, 20000), (8000, 8000)])
def test_an_image_claiming_huge_dimensions_is_refused(server, width, height):
    server.routes["/bomb.png"] = Route(body=png_claiming(width, height), content_type="image/png")
    with pytest.raises(NotAnImage, match="too many pixels"):
        fetch_image(server.url("/bomb.png"))


def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(server, dns):
    png = make_png()
    server.routes["/image.png"] = Route(body=png, content_type="image/png")
    dns.records["pinned.test"] = ["127.0.0.1"]
    # Were the name looked up again at connect time, it would now point where nothing listens.
    dns.rebind_to["pinned.test"] = ["127.0.0.2"]
    assert fetch_image(server.url("/image.png", host="pinned.test")) == png
    assert server.seen == [("/image.png", f"pinned.test:{server.port}")]
    assert dns.lookups == ["pinned.test"]


# --- TLS: certificates are checked against the URL's host name, not the pinned address --------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tls")
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    command += ["-days", "2", "-subj", "/CN=pinned.test", "-addext", "subjectAltName=DNS:pinned.test"]
    command += ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return folder


@pytest.fixture
def tls_server(settings, dns, monkeypatch, certificate) -> Iterator[LoopbackServer]:
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = True
    dns.records["pinned.test"] = ["127.0.0.1"]
    dns.records["other.test"] = ["127.0.0.1"]
    # The client trusts the test certificate instead of the public CAs; everything else is the real code path.
    monkeypatch.setattr(outbound, "_tls_context", lambda: ssl.create_default_context(cafile=certificate / "cert.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    with LoopbackServer(tls=context) as loopback:
        yield loopback


@pytest.mark.openssl
def test_an_https_fetch_verifies_the_certificate_for_the_url_host(tls_server):
    png = make_png()
    tls_server.routes["/image.png"] = Route(body=png, content_type="image/png")
    assert fetch_image(tls_server.url("/image.png", host="pinned.test")) == png
    assert tls_server.seen == [("/image.png", f"pinned.test:{tls_server.port}")]


@pytest.mark.openssl
def test_an_https_fetch_from_a_host_the_certificate_does_not_name_fails(tls_server):
    tls_server.routes["/image.png"] = Route(body=make_png(), content_type="image/png")
    with pytest.raises(FetchFailed, match="could not be fetched"):
        fetch_image(tls_server.url("/image.png", host="other.test"))
    assert tls_server.seen == []
