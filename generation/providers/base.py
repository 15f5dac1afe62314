"""The provider interface: submit, poll, fetch outputs, cancel.

A provider turns one validated GenerationRequest into files in request.workdir (or chat text).
generation.services owns the job's state, credits and storage; providers only talk to their upstream.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GenerationRequest:
    job_id: str
    type: str  # one of generation.kinds.JOB_TYPES
    model: str  # catalog id, e.g. "flux-dev"
    upstream_model: str  # the provider's own model id, e.g. "fal-ai/flux/dev"
    # Validated parameters with the API's camelCase names: prompt, negativePrompt, width, height, steps,
    # seed, style, duration, resolution, fps, voice, speed, language, messages (chat), maxTokens.
    params: dict[str, Any]
    workdir: Path  # an empty folder the provider writes its output files into
    image_path: Path | None = None  # the input image for IMAGE_TO_* / REFERENCE_TO_VIDEO, already validated
    # CHAT: called with each piece of the reply as it is written (a streamed completion forwards them).
    on_text: Callable[[str], None] | None = None
    # Why the local engine runs a hosted model: "test" (a test key) or "fallback" (its upstream is not set up).
    stand_in: str = ""


@dataclass(frozen=True)
class OutputFile:
    path: Path
    content_type: str
    bytes: int
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


@dataclass
class GenerationResult:
    outputs: list[OutputFile] = field(default_factory=list)
    text: str | None = None  # chat replies
    usage: dict[str, int] = field(default_factory=dict)  # e.g. promptTokens, completionTokens
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PollResult:
    status: str  # "running" | "succeeded" | "failed" | "canceled"
    progress: int | None = None
    error: str | None = None


class ProviderError(Exception):
    """An upstream failure. transient=True means retrying the same request may succeed."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


ProgressCallback = Callable[[int], None]


class Provider:
    name = "base"
    poll_interval = 1.0
    max_poll_interval = 10.0

    @classmethod
    def is_configured(cls) -> bool:
        return True

    def submit(self, request: GenerationRequest) -> str:
        raise NotImplementedError

    def poll(self, request: GenerationRequest, upstream_id: str) -> PollResult:
        raise NotImplementedError

    def fetch_outputs(self, request: GenerationRequest, upstream_id: str) -> GenerationResult:
        raise NotImplementedError

    def cancel(self, request: GenerationRequest, upstream_id: str) -> None:
        raise NotImplementedError

    def run(self, request: GenerationRequest, progress: ProgressCallback, deadline: float) -> GenerationResult:
        """Submit, poll with backoff until done or the monotonic deadline passes, then fetch the outputs."""
        upstream_id = self.submit(request)
        interval = self.poll_interval
        while True:
            state = self.poll(request, upstream_id)
            if state.progress is not None:
                progress(state.progress)
            if state.status == "succeeded":
                return self.fetch_outputs(request, upstream_id)
            if state.status in ("failed", "canceled"):
                raise ProviderError(state.error or f"Upstream job {state.status}.")
            if time.monotonic() + interval > deadline:
                self.cancel(request, upstream_id)
                raise ProviderError("Upstream job timed out.", transient=False)
            time.sleep(interval)
            interval = min(interval * 1.5, self.max_poll_interval)
