"""Replicate predictions: create, poll, download the output URLs, cancel."""

import logging
import re
from typing import Any

import httpx
from django.conf import settings

from .base import GenerationRequest, GenerationResult, PollResult, Provider, ProviderError
from .http import download_output, image_data_uri, make_client, media_inputs, redact, send_json, send_quietly

logger = logging.getLogger(__name__)

WHAT = "Replicate"
FAILED = ("failed", "aborted")  # "aborted": the prediction hit its deadline before it started
PERCENT = re.compile(r"(\d{1,3})%")


class ReplicateProvider(Provider):
    name = "replicate"

    @classmethod
    def is_configured(cls) -> bool:
        return bool(settings.REPLICATE_API_TOKEN)

    def submit(self, request: GenerationRequest) -> str:
        if request.type == "CHAT":
            raise ProviderError("The Replicate provider does not support CHAT.")
        inputs = media_inputs(request.params)
        if request.image_path is not None:
            inputs["image"] = image_data_uri(request.image_path)
        # "owner/name:version" pins a version; a bare "owner/name" runs the model's latest (official) version.
        model, _, version = request.upstream_model.partition(":")
        if version:
            url, body = _url("/v1/predictions"), {"version": version, "input": inputs}
        else:
            url, body = _url(f"/v1/models/{model}/predictions"), {"input": inputs}
        with self._client() as client:
            prediction = send_json(client, "POST", url, what=WHAT, json=body)
        if not isinstance(prediction.get("id"), str):
            raise ProviderError("Replicate returned an unexpected response.")
        return prediction["id"]

    def poll(self, request: GenerationRequest, upstream_id: str) -> PollResult:
        prediction = self._prediction(upstream_id)
        status = prediction.get("status")
        if status == "canceled":
            return PollResult("canceled", error="Replicate prediction was canceled.")
        if status in FAILED:
            # The upstream reason goes to the log only: it is free text we do not control.
            reason = redact(str(prediction.get("error"))[:300], settings.REPLICATE_API_TOKEN)
            logger.warning("Replicate prediction %s failed: %s", upstream_id, reason)
            return PollResult("failed", error="Replicate prediction failed.")
        if status == "succeeded":
            return PollResult("succeeded", progress=100)
        return PollResult("running", progress=_progress(prediction.get("logs")))

    def fetch_outputs(self, request: GenerationRequest, upstream_id: str) -> GenerationResult:
        prediction = self._prediction(upstream_id)
        urls = _output_urls(prediction.get("output"))
        if not urls:
            raise ProviderError("Replicate returned no output files.")
        outputs = [download_output(url, request.workdir / f"output-{i}", what=WHAT) for i, url in enumerate(urls)]
        return GenerationResult(outputs=outputs, metadata={"upstreamId": upstream_id})

    def cancel(self, request: GenerationRequest, upstream_id: str) -> None:
        """Best effort: a prediction that already finished cannot be canceled and that is fine."""
        with self._client() as client:
            send_quietly(client, "POST", _url(f"/v1/predictions/{upstream_id}/cancel"), what=WHAT)

    def _prediction(self, upstream_id: str) -> dict[str, Any]:
        with self._client() as client:
            return send_json(client, "GET", _url(f"/v1/predictions/{upstream_id}"), what=WHAT)

    def _client(self) -> httpx.Client:
        if not self.is_configured():
            raise ProviderError("The Replicate provider is not configured.")
        return make_client({"Authorization": f"Bearer {settings.REPLICATE_API_TOKEN}"})


def _url(path: str) -> str:
    return f"{settings.REPLICATE_API_BASE.rstrip('/')}{path}"


def _progress(logs: Any) -> int | None:
    """Most models log tqdm bars ("50%|#####     | 25/50"); the last percentage is the current one."""
    found = PERCENT.findall(logs) if isinstance(logs, str) else []
    return min(int(found[-1]), 100) if found else None


def _output_urls(output: Any) -> list[str]:
    # Output is a URL, a list of URLs, or (for some models) an object whose values are URLs.
    if isinstance(output, str):
        output = [output]
    elif isinstance(output, dict):
        output = list(output.values())
    if not isinstance(output, list):
        return []
    return [item for item in output if isinstance(item, str) and item.startswith(("https://", "http://", "data:"))]
