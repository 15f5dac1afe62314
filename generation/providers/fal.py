"""fal.ai queue API: submit to the queue, poll the request status, fetch the result, cancel."""

import logging
from typing import Any

import httpx
from django.conf import settings

from .base import GenerationRequest, GenerationResult, PollResult, Provider, ProviderError
from .http import download_output, image_data_uri, make_client, media_inputs, redact, send_json, send_quietly

logger = logging.getLogger(__name__)

WHAT = "fal"
IMAGE_TYPES = ("TEXT_TO_IMAGE", "IMAGE_TO_IMAGE")
FAILED = ("ERROR", "FAILED")
NAMESPACES = ("workflows", "comfy")


class FalProvider(Provider):
    name = "fal"

    @classmethod
    def is_configured(cls) -> bool:
        return bool(settings.FAL_KEY)

    def submit(self, request: GenerationRequest) -> str:
        if request.type == "CHAT":
            raise ProviderError("The fal provider does not support CHAT.")
        with self._client() as client:
            queued = send_json(client, "POST", _url(request.upstream_model), what=WHAT, json=_inputs(request))
        if not isinstance(queued.get("request_id"), str):
            raise ProviderError("fal returned an unexpected response.")
        # The status/response/cancel URLs fal returns are rebuilt from FAL_API_BASE instead, so a proxy or
        # a loopback fake configured there sees every call, and a hostile response cannot redirect our key.
        return queued["request_id"]

    def poll(self, request: GenerationRequest, upstream_id: str) -> PollResult:
        with self._client() as client:
            state = send_json(client, "GET", _request_url(request, upstream_id, "/status"), what=WHAT)
        status = state.get("status")
        if status in FAILED or state.get("error"):
            reason = redact(str(state.get("error"))[:300], settings.FAL_KEY)
            logger.warning("fal request %s failed: %s", upstream_id, reason)
            return PollResult("failed", error="fal request failed.")
        if status == "COMPLETED":
            return PollResult("succeeded", progress=100)
        return PollResult("running")  # IN_QUEUE / IN_PROGRESS carry no percentage

    def fetch_outputs(self, request: GenerationRequest, upstream_id: str) -> GenerationResult:
        with self._client() as client:
            result = send_json(client, "GET", _request_url(request, upstream_id), what=WHAT)
        urls = _output_urls(result)
        if not urls:
            raise ProviderError("fal returned no output files.")
        outputs = [download_output(url, request.workdir / f"output-{i}", what=WHAT) for i, url in enumerate(urls)]
        metadata = {"seed": result["seed"]} if isinstance(result.get("seed"), int) else {}
        return GenerationResult(outputs=outputs, metadata=metadata)

    def cancel(self, request: GenerationRequest, upstream_id: str) -> None:
        """Best effort: fal only cancels requests that are still queued or running."""
        with self._client() as client:
            send_quietly(client, "PUT", _request_url(request, upstream_id, "/cancel"), what=WHAT)

    def _client(self) -> httpx.Client:
        if not self.is_configured():
            raise ProviderError("The fal provider is not configured.")
        return make_client({"Authorization": f"Key {settings.FAL_KEY}"})


def _url(path: str) -> str:
    return f"{settings.FAL_API_BASE.rstrip('/')}/{path.strip('/')}"


def _request_url(request: GenerationRequest, upstream_id: str, suffix: str = "") -> str:
    # Requests live under the app id ("owner/app") without the endpoint sub-path: "fal-ai/flux/dev" is polled
    # at "fal-ai/flux/requests/...". Namespaced ids ("workflows/owner/app") keep their namespace.
    parts = request.upstream_model.strip("/").split("/")
    app_id = "/".join(parts[: 3 if parts[0] in NAMESPACES else 2])
    return _url(f"{app_id}/requests/{upstream_id}{suffix}")


def _inputs(request: GenerationRequest) -> dict[str, Any]:
    inputs = media_inputs(request.params)
    if request.type in IMAGE_TYPES and "width" in inputs and "height" in inputs:
        # fal image models take a custom size as one object instead of two fields.
        inputs["image_size"] = {"width": inputs.pop("width"), "height": inputs.pop("height")}
    if request.image_path is not None:
        inputs["image_url"] = image_data_uri(request.image_path)
    return inputs


def _output_urls(result: dict[str, Any]) -> list[str]:
    images = result.get("images") if isinstance(result.get("images"), list) else []
    candidates = [*images, result.get("image"), result.get("video"), result.get("audio"), result.get("audio_url")]
    return [url for url in map(_url_of, candidates) if url]


def _url_of(item: Any) -> str | None:
    """fal files are {"url", "content_type", ...} objects; a few models return the bare URL string."""
    url = item.get("url") if isinstance(item, dict) else item
    return url if isinstance(url, str) and url else None
