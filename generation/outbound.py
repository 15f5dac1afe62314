"""SSRF guard for every URL a user gives us: `imageUrl` inputs and webhook endpoints.

check_url() parses a URL, resolves its host once and refuses it if ANY address is not public (private, loopback,
link-local, multicast, reserved, unspecified, shared 100.64.0.0/10, IPv6 forms embedding one of those, or a cloud
metadata address). fetch_bytes() and post_json() then connect to an address check_url() approved instead of
resolving the name again, so a DNS answer that changes between the check and the connection (DNS rebinding)
cannot steer us inside.
Redirects are never followed: every hop would need the same check, and a redirect is the classic way around one.

Error messages reach API users: they say what is wrong and never carry a resolved address or an httpx message.

Two settings relax the guard FOR TESTS AND LOCAL DEVELOPMENT ONLY (loopback fakes); both default to False and must
stay off in production. They are read at call time with getattr(settings, name, False):
- FLIXLY_OUTBOUND_ALLOW_HTTP: accept http:// URLs when a caller passes allow_http=None.
- FLIXLY_OUTBOUND_ALLOW_PRIVATE: accept non-public addresses such as 127.0.0.1. Cloud metadata addresses stay
  refused even then: they hand out credentials, and no fake needs them.
"""

import io
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx
from django.conf import settings
from PIL import Image

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 4096
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Well under Pillow's own warning threshold (~89 MP); a 50 MP input is already far beyond any model's input size.
MAX_IMAGE_PIXELS = 50_000_000
READABLE_FORMATS = "send a PNG, JPEG, WebP or GIF"
DEFAULT_PORTS = {"https": 443, "http": 80}
SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT: inside someone's network
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address) for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class OutboundError(ValueError):
    """Base of the errors below; the message is safe to show the user."""


class UnsafeUrl(OutboundError):
    """The URL is malformed or points somewhere we refuse to connect to."""


class FetchFailed(OutboundError):
    """The server could not be reached in time or answered with a non-2xx status."""


class TooLarge(OutboundError):
    """The body is (or says it is) larger than the caller's limit."""


class NotAnImage(OutboundError):
    """The body does not decode as an image, or the image has too many pixels."""


@dataclass(frozen=True)
class ResolvedUrl:
    url: str  # as the user gave it
    scheme: str
    host: str  # lower-case ASCII (IDNA) form; IPv6 literals without brackets
    port: int
    path_and_query: str
    addresses: tuple[str, ...]  # every A/AAAA record, all of them checked, in resolver order


@dataclass(frozen=True)
class FetchedFile:
    content: bytes
    content_type: str  # the Content-Type header as sent ("" when absent)


# --- checking ------------------------------------------------------------------------------------------
def check_url(url: str, *, allow_http: bool | None = None, label: str = "URL") -> ResolvedUrl:
    """Validate and resolve `url`, or raise UnsafeUrl. `label` names the URL in messages ("The image URL")."""
    parts = _split(url, label)
    scheme = _checked_scheme(parts, allow_http, label)
    host = _checked_host(parts, label)
    port = _checked_port(parts, scheme, label)
    addresses = _resolve(host, port, label)
    allow_private = _setting("FLIXLY_OUTBOUND_ALLOW_PRIVATE")
    if any(_is_forbidden(address, allow_private=allow_private) for address in addresses):
        raise UnsafeUrl(f"{label} resolves to a private address, which is not allowed.")
    query = f"?{parts.query}" if parts.query else ""
    return ResolvedUrl(url, scheme, host, port, (parts.path or "/") + query, addresses)


def _setting(name: str) -> bool:
    return bool(getattr(settings, name, False))


def _split(url: str, label: str) -> SplitResult:
    # urlsplit silently drops tabs and newlines; refuse them so the URL we check is the URL the user sent.
    if len(url) > MAX_URL_LENGTH or not url.isprintable() or any(char.isspace() for char in url):
        raise UnsafeUrl(f"{label} is not a valid URL.")
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise UnsafeUrl(f"{label} is not a valid URL.") from exc


def _checked_scheme(parts: SplitResult, allow_http: bool | None, label: str) -> str:
    http_allowed = _setting("FLIXLY_OUTBOUND_ALLOW_HTTP") if allow_http is None else allow_http
    if parts.scheme == "https" or (http_allowed and parts.scheme == "http"):
        return parts.scheme
    raise UnsafeUrl(f"{label} must use https.")


def _checked_host(parts: SplitResult, label: str) -> str:
    # Any "@" counts: parsers disagree about where userinfo ends ("https://a\\@b/"), and we never need it.
    if "@" in parts.netloc:
        raise UnsafeUrl(f"{label} must not contain a user name or password.")
    if not parts.hostname:
        raise UnsafeUrl(f"{label} must include a host.")
    try:
        return parts.hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeUrl(f"{label} host is not a valid host name.") from exc


def _checked_port(parts: SplitResult, scheme: str, label: str) -> int:
    try:
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"{label} has an invalid port.") from exc
    if port is None:
        return DEFAULT_PORTS[scheme]
    if port == 0:
        raise UnsafeUrl(f"{label} has an invalid port.")
    return port


def _resolve(host: str, port: int, label: str) -> tuple[str, ...]:
    # getaddrinfo also normalises numeric oddities (2130706433, 0x7f.1, 017700000001, 127.1) to the address the
    # OS would really connect to, so literals get exactly the same check as names.
    try:
        records = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"{label} host could not be resolved.") from exc
    families = (socket.AF_INET, socket.AF_INET6)
    addresses = tuple(dict.fromkeys(str(record[4][0]) for record in records if record[0] in families))
    if not addresses:
        raise UnsafeUrl(f"{label} host could not be resolved.")
    return addresses


def _is_forbidden(address: str, *, allow_private: bool) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True  # not something we can reason about, so not something we connect to
    candidates = [ip, *_embedded_ipv4(ip)]
    if any(candidate in METADATA_ADDRESSES for candidate in candidates):
        return True
    return not allow_private and any(_is_special(candidate) for candidate in candidates)


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4-mapped, 6to4 and Teredo addresses deliver to an IPv4 host, so that host is checked as well."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    teredo_client = ip.teredo[1] if ip.teredo else None
    return [embedded for embedded in (ip.ipv4_mapped, ip.sixtofour, teredo_client) if embedded is not None]


def _is_special(ip: IPAddress) -> bool:
    # is_global alone misses multicast (and IPv6 site-local), so every category is named explicitly.
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip in SHARED_ADDRESS_SPACE
        or getattr(ip, "is_site_local", False)
    )


# --- fetching ------------------------------------------------------------------------------------------
def fetch_bytes(
    url: str, *, max_bytes: int, timeout: float = 10.0, allow_http: bool | None = None, label: str = "URL"
) -> FetchedFile:
    """GET a checked URL from its checked address, the whole exchange within `timeout` seconds."""
    resolved = check_url(url, allow_http=allow_http, label=label)
    fetch = _Fetch(resolved, max_bytes, label)
    try:
        with _client(timeout) as client:
            return fetch.from_any_address(client)
    except httpx.TimeoutException as exc:
        raise FetchFailed(f"{label} could not be fetched (timed out).") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # httpx messages quote the pinned address; the user only needs to know the fetch failed.
        raise FetchFailed(f"{label} could not be fetched.") from exc


def _client(timeout: float) -> httpx.Client:
    """A client whose whole exchange, every address tried included, ends `timeout` seconds from now."""
    transport = _DeadlineTransport(time.monotonic() + timeout, _tls_context())
    # trust_env=False: proxy variables and ~/.netrc are for our own traffic, never for user-supplied URLs.
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport)


def _tls_context() -> ssl.SSLContext:
    """Verifies certificates against the URL's host name (passed as SNI), not the pinned IP. Tests swap the CAs."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class _Fetch:
    resolved: ResolvedUrl
    max_bytes: int
    label: str

    def from_any_address(self, client: httpx.Client) -> FetchedFile:
        return _on_any_address(self.resolved, lambda address: self.from_address(client, address))

    def from_address(self, client: httpx.Client, address: str) -> FetchedFile:
        url = _pinned_url(self.resolved, address)
        with client.stream("GET", url, headers=_headers(self.resolved), extensions=_sni(self.resolved)) as response:
            self._check_status(response.status_code)
            declared = response.headers.get("content-length", "")
            if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > self.max_bytes):
                raise self._too_large()  # refuse before reading a byte of the body
            return FetchedFile(self._read(response), response.headers.get("content-type", ""))

    def _check_status(self, status: int) -> None:
        if 300 <= status < 400:
            raise UnsafeUrl(f"{self.label} answered with a redirect; redirects are not followed.")
        if not 200 <= status < 300:
            raise FetchFailed(f"{self.label} could not be fetched (HTTP {status}).")

    def _read(self, response: httpx.Response) -> bytes:
        # Count bytes as they arrive: Content-Length may be absent (chunked) or wrong, and memory is the limit.
        chunks: list[bytes] = []
        received = 0
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> TooLarge:
        limit = f"{self.max_bytes // 2**20} MB" if self.max_bytes % 2**20 == 0 else f"{self.max_bytes:,} bytes"
        return TooLarge(f"{self.label} is larger than the {limit} limit.")


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every step gets only the time left before the deadline. httpx's timeouts bound each
    step alone, so a server answering a byte at a time would hold the thread (a web request's, for an
    imageUrl) for as long as it liked."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> "_DeadlineStream":
        left = _time_left(self._deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float) -> None:
        self._backend, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: object = None,
    ) -> _DeadlineStream:
        left = _time_left(self._deadline, timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _time_left(deadline: float, timeout: float | None, expired: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("The exchange ran past its deadline.")
    return left if timeout is None else min(timeout, left)


class _DeadlineTransport(httpx.HTTPTransport):
    def __init__(self, deadline: float, tls: ssl.SSLContext) -> None:
        super().__init__(verify=tls, trust_env=False)
        # httpx's transport takes no network backend of its own; httpcore's pool, which it wraps, does.
        self._pool = httpcore.ConnectionPool(ssl_context=tls, network_backend=_DeadlineBackend(deadline))


def _on_any_address[T](resolved: ResolvedUrl, attempt: Callable[[str], T]) -> T:
    *others, last = resolved.addresses
    for address in others:
        try:
            return attempt(address)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            continue  # a dual-stack host whose AAAA is unreachable from here still works over IPv4
    return attempt(last)


def _pinned_url(resolved: ResolvedUrl, address: str) -> str:
    # The checked IP goes into the URL so httpx connects exactly where check_url looked (no second DNS lookup,
    # hence no DNS rebinding); the Host header and TLS SNI still carry the original name.
    literal = f"[{address}]" if ":" in address else address
    return f"{resolved.scheme}://{literal}:{resolved.port}{resolved.path_and_query}"


def _headers(resolved: ResolvedUrl) -> dict[str, str]:
    host = f"[{resolved.host}]" if ":" in resolved.host else resolved.host
    if resolved.port != DEFAULT_PORTS[resolved.scheme]:
        host = f"{host}:{resolved.port}"
    # identity: so Content-Length is the real size and the byte cap counts what the server actually sends.
    return {"Host": host, "Accept-Encoding": "identity", "User-Agent": "Flixly-Fetcher/1.0"}


def _sni(resolved: ResolvedUrl) -> dict[str, str]:
    return {"sni_hostname": resolved.host} if resolved.scheme == "https" else {}


# --- posting --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Posted:
    status: int
    seconds: float  # from connecting to the answer's status line


def post_json(url: str, body: bytes, *, headers: dict[str, str], timeout: float = 10.0, label: str = "URL") -> Posted:
    """POST a JSON `body` to a checked URL at its checked address; the answer's status, its body unread.
    A redirect comes back as its 3xx status (never followed). Raises UnsafeUrl, or FetchFailed when the
    server could not be reached or had not answered `timeout` seconds after the start."""
    resolved = check_url(url, label=label)
    sent = {**_headers(resolved), "Content-Type": "application/json", **headers}

    def post(client: httpx.Client, address: str) -> Posted:
        pinned, started = _pinned_url(resolved, address), time.perf_counter()
        with client.stream("POST", pinned, content=body, headers=sent, extensions=_sni(resolved)) as response:
            return Posted(response.status_code, time.perf_counter() - started)

    try:
        with _client(timeout) as client:
            return _on_any_address(resolved, lambda address: post(client, address))
    except httpx.TimeoutException as exc:
        raise FetchFailed(f"{label} did not answer within {timeout:g} seconds.") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchFailed(f"{label} could not be reached.") from exc


# --- images --------------------------------------------------------------------------------------------
def fetch_image(url: str, *, max_bytes: int = MAX_IMAGE_BYTES, label: str = "The image URL") -> bytes:
    """Fetch `url` and return its bytes if they are an image of at most MAX_IMAGE_PIXELS pixels."""
    content = fetch_bytes(url, max_bytes=max_bytes, label=label).content
    check_image(content, label=label)
    return content


def check_image(content: bytes, *, label: str) -> None:
    """Raise NotAnImage unless `content` is a readable image of at most MAX_IMAGE_PIXELS pixels: a small
    file can declare a huge canvas, which a worker would then decode in full."""
    try:
        pixels = _verified_pixel_count(content)
    except Image.DecompressionBombError:
        pixels = MAX_IMAGE_PIXELS + 1  # Pillow's own, higher limit tripped, so ours certainly did
    except Exception as exc:  # Pillow reports corrupt input with many types: OSError, SyntaxError, struct.error...
        raise NotAnImage(f"{label} is not a readable image: {READABLE_FORMATS}.") from exc
    if pixels > MAX_IMAGE_PIXELS:
        raise NotAnImage(f"{label} has too many pixels (the limit is {MAX_IMAGE_PIXELS // 1_000_000} megapixels).")


def _verified_pixel_count(content: bytes) -> int:
    # Image.open reads only the header, so the size is known before anything is decompressed.
    with Image.open(io.BytesIO(content)) as image:
        pixels = image.width * image.height
        if pixels <= MAX_IMAGE_PIXELS:
            image.verify()  # structural check (e.g. PNG chunk CRCs) without decoding the pixels
    if pixels <= MAX_IMAGE_PIXELS:
        _decode_jpeg_small(content)
    return pixels


def _decode_jpeg_small(content: bytes) -> None:
    """A JPEG's verify() reads only its header: a truncated file passed, was charged and failed in the worker.
    Decoding it at an eighth of its size reads all of its data in a sixty-fourth of the memory."""
    with Image.open(io.BytesIO(content)) as image:
        if image.format == "JPEG":
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
