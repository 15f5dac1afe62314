"""A provider that does nothing, for the worker benchmark.

Registered with FLIXLY_EXTRA_PROVIDERS='{"noop": "bench.noop.NoopProvider"}' (bench/config.py sets it).
"""

from generation.providers.base import GenerationRequest, GenerationResult, ProgressCallback, Provider


class NoopProvider(Provider):
    name = "noop"

    def run(self, request: GenerationRequest, progress: ProgressCallback, deadline: float) -> GenerationResult:
        return GenerationResult(text="ok")
