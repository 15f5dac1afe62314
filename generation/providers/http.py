"""Plumbing shared by the HTTP providers: clients, error mapping, bounded downloads, output metadata.

Error messages built here are deliberately generic: they reach users and job records, so they never
carry an upstream body, a URL with a token in it, or an Authorization header.
"""

import base64
import binascii
import logging
import mimetypes
import wave
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
from django.conf import settings
from PIL import Image

from .base import OutputFile, ProviderError

logger = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")
WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
EXTENSIONS = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "image/jpeg": ".jpg"}

# Our camelCase parameter names -> the snake_case input names Replicate and fal models use.
MEDIA_INPUT_NAMES = {
    "prompt": "prompt",
    "negativePrompt": "negative_prompt",
    "width": "width",
    "height": "height",
    "steps": "num_inference_steps",
    "seed": "seed",
    "duration": "duration",
    "resolution": "resolution",
    "fps": "fps",
    "voice": "voice",
    "speed": "speed",
    "language": "language",
}


def make_client(headers: Mapping[str, str] | None = None, *, follow_redirects: bool = False) -> httpx.Client:
    """One client per call; the timeout is read now so tests and admins can change it at runtime."""
    timeout = httpx.Timeout(float(settings.FLIXLY_PROVIDER_TIMEOUT))
    return httpx.Client(headers=dict(headers or {}), timeout=timeout, follow_redirects=follow_redirects)


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _client_secret(client: httpx.Client) -> str:
    return client.headers.get("authorization", "").partition(" ")[2]


def raise_for_status(response: httpx.Response, what: str) -> None:
    """429, 408 and 5xx are worth retrying; any other non-2xx means this request will never work."""
    status = response.status_code
    if 200 <= status < 300:
        return
    transient = status in (408, 429) or status >= 500
    if status in (401, 403):
        raise ProviderError(f"{what} rejected the configured credentials (HTTP {status}).")
    raise ProviderError(f"{what} request failed (HTTP {status}).", transient=transient)


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn httpx exceptions (which may quote URLs) into ProviderErrors with a fixed message."""
    try:
        yield
    except httpx.TransportError as exc:
        raise ProviderError(f"Could not reach {what}.", transient=True) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"{what} request failed.") from exc


def send(client: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
    with translate_errors(what):
        response = client.request(method, url, **kwargs)
    if response.is_error:
        # Operators still get the upstream's reason, minus anything that looks like our credential.
        logger.warning(
            "%s returned HTTP %s: %s", what, response.status_code, redact(response.text[:300], _client_secret(client))
        )
    raise_for_status(response, what)
    return response


def send_json(client: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
    response = send(client, method, url, what=what, **kwargs)
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ProviderError(f"{what} returned an unexpected response.")
    return data


def send_quietly(client: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any) -> None:
    """For best-effort calls such as cancel: a failure is logged, never raised over the caller's own error."""
    try:
        send(client, method, url, what=what, **kwargs)
    except ProviderError as exc:
        logger.warning("%s call %s failed: %s", what, method, exc)


@contextmanager
def open_stream(client: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any) -> Iterator[httpx.Response]:
    """A streamed response whose status is checked and whose mid-body network errors are translated too."""
    with translate_errors(what), client.stream(method, url, **kwargs) as response:
        raise_for_status(response, what)
        yield response


def media_inputs(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: params[key] for key, name in MEDIA_INPUT_NAMES.items() if params.get(key) is not None}


def image_data_uri(path: Path) -> str:
    """Upstreams fetch inputs by URL; a data URI avoids exposing our storage to them."""
    with Image.open(path) as image:
        mime = Image.MIME.get(image.format or "", "image/png")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def download_output(url: str, dest: Path, *, what: str) -> OutputFile:
    """Save an upstream output URL (http(s) or data:) as dest plus an extension matching its type."""
    if url.startswith("data:"):
        return save_data_uri(url, dest, what=what)
    if not url.startswith(("https://", "http://")):
        raise ProviderError(f"{what} returned an unsupported output URL.")
    # A separate client without credentials: output URLs live on CDNs that must not see our key.
    with make_client(follow_redirects=True) as client:
        return stream_to_file(client, "GET", url, dest, what=what)


def stream_to_file(client: httpx.Client, method: str, url: str, dest: Path, *, what: str, **kwargs: Any) -> OutputFile:
    part = dest.with_name(dest.name + ".part")
    try:
        with open_stream(client, method, url, what=what, **kwargs) as response:
            declared = int(response.headers.get("content-length") or 0)
            if declared > MAX_DOWNLOAD_BYTES:
                raise _too_large(what)
            _write_capped(response.iter_bytes(), part, what)
            content_type = response.headers.get("content-type", "")
        return finish_file(part, dest, content_type)
    finally:
        part.unlink(missing_ok=True)


def save_bytes(data: bytes, dest: Path, *, what: str, content_type: str = "") -> OutputFile:
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise _too_large(what)
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(data)
    return finish_file(part, dest, content_type)


def save_data_uri(uri: str, dest: Path, *, what: str) -> OutputFile:
    header, _, payload = uri.partition(",")
    if not header.endswith(";base64"):
        raise ProviderError(f"{what} returned an unsupported output URL.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderError(f"{what} returned an undecodable output.") from exc
    return save_bytes(data, dest, what=what, content_type=header[5:].removesuffix(";base64"))


def _too_large(what: str) -> ProviderError:
    return ProviderError(f"{what} output is larger than the {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB limit.")


def _write_capped(chunks: Iterable[bytes], path: Path, what: str) -> None:
    # Content-Length can be absent or wrong, so the cap is enforced on the bytes actually received.
    total = 0
    with path.open("wb") as out:
        for chunk in chunks:
            total += len(chunk)
            if total > MAX_DOWNLOAD_BYTES:
                raise _too_large(what)
            out.write(chunk)


def finish_file(part: Path, dest: Path, content_type: str) -> OutputFile:
    """Name the finished file after its type and measure it."""
    content_type = content_type.split(";")[0].strip().lower()
    if content_type in GENERIC_TYPES:
        content_type = sniff_content_type(part)
    extension = EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
    final = dest.with_name(dest.name + extension)
    part.replace(final)
    return describe_output(final, content_type)


def sniff_content_type(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(16)
    signatures = (
        (b"\x89PNG", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"ID3", "audio/mpeg"),
        (b"OggS", "audio/ogg"),
        (b"fLaC", "audio/flac"),
        (b"\x1a\x45\xdf\xa3", "video/webm"),
    )
    for magic, content_type in signatures:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"WEBP"):
        return "audio/wav" if head[8:12] == b"WAVE" else "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return _mpeg_audio(head) or "application/octet-stream"


def _mpeg_audio(head: bytes) -> str | None:
    """An MP3 (MPEG layer II/III) or ADTS AAC frame header, checked past its sync bits: FF FE also starts
    UTF-16 text, such as an upstream's JSON error."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0xF6 == 0xF0:  # ADTS: 12 sync bits, layer 00
        return "audio/aac" if (head[2] >> 2) & 0x0F <= 12 else None  # sampling frequency index
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    if version == 1 or layer not in (1, 2) or bitrate == 0x0F or rate == 3:  # reserved values; layer I is not MP3
        return None
    return "audio/mpeg"


def describe_output(path: Path, content_type: str) -> OutputFile:
    size: tuple[int, int] | None = None
    duration: float | None = None
    if content_type.startswith("image/"):
        size = _image_size(path)
    elif content_type in WAV_TYPES:
        duration = _wav_seconds(path)
    elif content_type.startswith("video/"):
        size, duration = _video_size(path), _video_seconds(path)
    width, height = size or (None, None)
    return OutputFile(path, content_type, path.stat().st_size, width, height, duration)


# Measuring is informative, not a gate: an unreadable header leaves the field empty instead of failing the job.
def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None


def _wav_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as audio:
            return round(audio.getnframes() / audio.getframerate(), 3)
    except (OSError, EOFError, wave.Error, ZeroDivisionError):
        return None


def _video_seconds(path: Path) -> float | None:
    try:
        return round(imageio_ffmpeg.count_frames_and_secs(str(path))[1], 3)
    except (OSError, RuntimeError, ValueError):
        return None


def _video_size(path: Path) -> tuple[int, int] | None:
    frames = imageio_ffmpeg.read_frames(str(path))
    try:
        width, height = next(frames)["size"]
        return int(width), int(height)
    except (OSError, RuntimeError, ValueError, StopIteration, KeyError):
        return None
    finally:
        frames.close()
