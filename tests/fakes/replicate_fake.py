"""A Replicate upstream: create predictions (by model or by version), get them, cancel them.

A prediction reports "processing" on its first poll and finishes on the next (see polls_until_done).
"""

import itertools
import re
from typing import Any

from .server import FakeServer, Recorded, Response, json_response, make_mp4, make_png, make_wav

MODEL_PREDICTIONS = re.compile(r"^/v1/models/([^/]+)/([^/]+)/predictions$")
PREDICTION = re.compile(r"^/v1/predictions/([^/]+)(/cancel)?$")


class FakeReplicate(FakeServer):
    def __init__(self, token: str = "r8_test_replicate_token") -> None:
        super().__init__()
        self.token = token
        self.expected_auth = f"Bearer {token}"
        self.output_kind = "image"  # "image" | "images" | "video" | "audio"
        self.polls_until_done = 2
        self.fail_predictions_with: str | None = None  # an upstream error text; the prediction ends "failed"
        self.predictions: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def route(self, request: Recorded) -> Response:
        if request.method == "POST" and (match := MODEL_PREDICTIONS.match(request.path)):
            return self._create(request, model=f"{match[1]}/{match[2]}")
        if request.method == "POST" and request.path == "/v1/predictions":
            return self._create(request, version=request.json.get("version"))
        match = PREDICTION.match(request.path)
        if match and match[1] in self.predictions:
            prediction = self.predictions[match[1]]
            if request.method == "POST" and match[2]:
                prediction["status"] = "canceled"
                return json_response(self._public(prediction))
            if request.method == "GET" and not match[2]:
                return json_response(self._public(self._advance(prediction)))
        return json_response({"detail": "Not found."}, 404)

    def _create(self, request: Recorded, model: str | None = None, version: str | None = None) -> Response:
        if failure := self.take_submit_failure():
            return failure
        prediction_id = f"pred{next(self._ids)}"
        self.predictions[prediction_id] = {
            "id": prediction_id,
            "model": model,
            "version": version,
            "input": request.json.get("input"),
            "status": "starting",
            "output": None,
            "error": None,
            "logs": "",
            "polls": 0,
        }
        return json_response(self._public(self.predictions[prediction_id]), 201)

    def _advance(self, prediction: dict[str, Any]) -> dict[str, Any]:
        if prediction["status"] not in ("starting", "processing"):
            return prediction
        prediction["polls"] += 1
        if prediction["polls"] < self.polls_until_done:
            prediction.update(
                status="processing", logs="Loading weights\n 20%|##        | 5/25\n 40%|####      | 10/25\n"
            )
        elif self.fail_predictions_with:
            prediction.update(status="failed", error=self.fail_predictions_with)
        else:
            prediction.update(status="succeeded", output=self._output(), logs=prediction["logs"] + "100%|##########|\n")
        return prediction

    def _output(self) -> str | list[str]:
        if self.output_kind == "images":
            return [self.add_file(f"out-{i}.png", make_png(32 + i, 32), "image/png") for i in range(2)]
        if self.output_kind == "video":
            return self.add_file("out.mp4", make_mp4(), "video/mp4")
        if self.output_kind == "audio":
            return self.add_file("out.wav", make_wav(1.5), "audio/wav")
        return self.add_file("out.png", make_png(), "image/png")

    def _public(self, prediction: dict[str, Any]) -> dict[str, Any]:
        public = {key: value for key, value in prediction.items() if key != "polls"}
        public["urls"] = {
            "get": f"{self.base_url}/v1/predictions/{prediction['id']}",
            "cancel": f"{self.base_url}/v1/predictions/{prediction['id']}/cancel",
        }
        return public
