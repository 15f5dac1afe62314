"""OpenAI-compatible upstreams (OpenAI itself, vLLM, Ollama, LiteLLM...): chat, images and speech.

These endpoints answer synchronously, so submit() does the work and keeps the result for fetch_outputs().
"""

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from django.conf import settings

from .base import GenerationRequest, GenerationResult, PollResult, Provider, ProviderError
from .http import download_output, make_client, open_stream, save_bytes, send_json, stream_to_file

WHAT = "The OpenAI-compatible upstream"


class OpenAICompatibleProvider(Provider):
    name = "openai_compatible"
    poll_interval = 0.01  # the first poll always reports success

    def __init__(self) -> None:
        self._results: dict[str, GenerationResult] = {}

    @classmethod
    def is_configured(cls) -> bool:
        # The key is optional: local servers such as Ollama and vLLM accept unauthenticated calls.
        return bool(settings.OPENAI_BASE_URL)

    def submit(self, request: GenerationRequest) -> str:
        handlers: dict[str, Callable[[httpx.Client, GenerationRequest], GenerationResult]] = {
            "CHAT": self._chat,
            "TEXT_TO_IMAGE": self._image,
            "TEXT_TO_SPEECH": self._speech,
        }
        handler = handlers.get(request.type)
        if handler is None:
            raise ProviderError(f"The OpenAI-compatible provider does not support {request.type}.")
        with self._client() as client:
            result = handler(client, request)
        upstream_id = uuid.uuid4().hex
        self._results[upstream_id] = result
        return upstream_id

    def poll(self, request: GenerationRequest, upstream_id: str) -> PollResult:
        if upstream_id in self._results:
            return PollResult("succeeded", progress=100)
        return PollResult("failed", error="The OpenAI-compatible result is no longer available.")

    def fetch_outputs(self, request: GenerationRequest, upstream_id: str) -> GenerationResult:
        result = self._results.pop(upstream_id, None)
        if result is None:
            raise ProviderError("The OpenAI-compatible result is no longer available.")
        return result

    def cancel(self, request: GenerationRequest, upstream_id: str) -> None:
        # The upstream call already finished inside submit(); only our copy of the result is left to drop.
        self._results.pop(upstream_id, None)

    def _client(self) -> httpx.Client:
        if not self.is_configured():
            raise ProviderError("The OpenAI-compatible provider is not configured.")
        key = settings.OPENAI_API_KEY
        return make_client({"Authorization": f"Bearer {key}"} if key else {})

    def _chat(self, client: httpx.Client, request: GenerationRequest) -> GenerationResult:
        params = request.params
        messages = params.get("messages") or [{"role": "user", "content": params.get("prompt", "")}]
        body = _chat_body(request.upstream_model, messages, params.get("maxTokens"))
        if request.on_text:
            return _streamed_chat(client, body, request.on_text)
        data = send_json(client, "POST", _url("/chat/completions"), what=WHAT, json=body)
        try:
            text = data["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(f"{WHAT} returned an unexpected response.") from exc
        return GenerationResult(text=text, usage=_usage(data.get("usage")))

    def _image(self, client: httpx.Client, request: GenerationRequest) -> GenerationResult:
        params = request.params
        body = {
            "model": request.upstream_model,
            "prompt": params.get("prompt", ""),
            "n": 1,
            "size": f"{params.get('width') or 1024}x{params.get('height') or 1024}",
            "response_format": "b64_json",
        }
        data = send_json(client, "POST", _url("/images/generations"), what=WHAT, json=body)
        items = data.get("data")
        first = items[0] if isinstance(items, list) and items else None
        dest = request.workdir / "image"
        if isinstance(first, dict) and first.get("b64_json"):
            return GenerationResult(outputs=[save_bytes(_b64(first["b64_json"]), dest, what=WHAT)])
        if isinstance(first, dict) and first.get("url"):
            # Some servers ignore response_format and answer with a URL instead.
            return GenerationResult(outputs=[download_output(first["url"], dest, what=WHAT)])
        raise ProviderError(f"{WHAT} returned no image.")

    def _speech(self, client: httpx.Client, request: GenerationRequest) -> GenerationResult:
        params = request.params
        body = {
            "model": request.upstream_model,
            "input": params.get("prompt", ""),
            "voice": params.get("voice") or "alloy",
            "speed": params.get("speed"),
            "response_format": "wav",
        }
        body = {key: value for key, value in body.items() if value is not None}
        # The response body is the audio itself, so it is streamed to disk under the same size cap.
        dest = request.workdir / "speech"
        return GenerationResult(
            outputs=[stream_to_file(client, "POST", _url("/audio/speech"), dest, what=WHAT, json=body)]
        )


def _url(path: str) -> str:
    return f"{settings.OPENAI_BASE_URL.rstrip('/')}{path}"


def _chat_body(model: str, messages: list, max_tokens: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def _usage(usage: Any) -> dict[str, int]:
    if not isinstance(usage, dict):
        return {}
    names = {"prompt_tokens": "promptTokens", "completion_tokens": "completionTokens"}
    return {ours: int(usage[theirs]) for theirs, ours in names.items() if isinstance(usage.get(theirs), int)}


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderError(f"{WHAT} returned an undecodable image.") from exc


def _streamed_chat(client: httpx.Client, body: dict, on_text: Callable[[str], None]) -> GenerationResult:
    """The reply streamed from the upstream (a job asked for as a streamed completion), each piece passed
    on as it comes. Once a piece has gone out a failure is final: a retry would send its reader another
    reply after the first one's start."""
    body = body | {"stream": True, "stream_options": {"include_usage": True}}
    pieces: list[str] = []
    usage: dict[str, int] = {}
    try:
        with open_stream(client, "POST", _url("/chat/completions"), what=WHAT, json=body) as response:
            for chunk in _stream_chunks(response):
                usage = _usage(chunk.get("usage")) or usage
                piece = _stream_delta(chunk)
                pieces.append(piece)
                on_text(piece)  # an empty piece too: it lets the writer send what it has held back
    except ProviderError as error:
        if any(pieces):
            raise ProviderError(f"{error} (after part of the reply was sent)", transient=False) from error
        raise
    return GenerationResult(text="".join(pieces), usage=usage)


def _stream_chunks(response: httpx.Response) -> Iterator[dict]:
    """The JSON chunks of an OpenAI-style event stream, up to its [DONE]."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, ": keep-alive" comments, "event:" lines
        payload = line.removeprefix("data:").strip()
        if payload == "[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except ValueError as exc:
            raise ProviderError(f"{WHAT} sent an unreadable stream chunk.") from exc
        if not isinstance(chunk, dict) or "error" in chunk:
            raise ProviderError(f"{WHAT} reported an error mid-stream.")
        yield chunk


def _stream_delta(chunk: dict) -> str:
    choices = chunk.get("choices") or [{}]
    delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
    content = (delta or {}).get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""
