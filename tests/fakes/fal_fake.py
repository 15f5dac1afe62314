"""A fal.ai queue upstream: POST /{model}, then /{app}/requests/{id}[/status|/cancel].

As on fal, request URLs use the app id ("owner/app") without the endpoint sub-path, and the URLs in the
submit answer point at the public queue host (here an unresolvable one), not at this fake.
"""

import itertools
import re
from typing import Any

from .server import FakeServer, Recorded, Response, json_response, make_mp4, make_png, make_wav

REQUEST = re.compile(r"^/([^/]+/[^/]+)/requests/([^/]+)(/status|/cancel)?$")


class FakeFal(FakeServer):
    def __init__(self, key: str = "fal-test-key:secret") -> None:
        super().__init__()
        self.key = key
        self.expected_auth = f"Key {key}"
        self.advertised_base = "https://queue.fal.invalid"
        self.output_kind = "images"  # "images" | "video" | "audio" | "audio_url"
        self.polls_until_done = 2
        self.fail_requests_with: str | None = None  # an upstream error text reported on completion
        self.failure_status = "COMPLETED"  # fal reports errors as "COMPLETED" + "error", or "ERROR"/"FAILED"
        self.queue: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def route(self, request: Recorded) -> Response:
        match = REQUEST.match(request.path)
        if match is None and "/requests/" not in request.path and request.method == "POST":
            return self._submit(request)
        entry = self.queue.get(match[2]) if match else None
        if entry is None or entry["app"] != match[1]:
            return json_response({"detail": "Not Found"}, 404)
        if request.method == "GET" and match[3] == "/status":
            return self._status(entry)
        if request.method == "GET" and match[3] is None:
            return self._result(entry)
        if request.method == "PUT" and match[3] == "/cancel":
            entry["canceled"] = True
            return json_response({"status": "CANCELLATION_REQUESTED"}, 202)
        return json_response({"detail": "Method Not Allowed"}, 405)

    def _submit(self, request: Recorded) -> Response:
        if failure := self.take_submit_failure():
            return failure
        model = request.path.strip("/")
        request_id = f"req-{next(self._ids)}"
        app = "/".join(model.split("/")[:2])
        self.queue[request_id] = {"model": model, "app": app, "input": request.json, "polls": 0, "canceled": False}
        base = f"{self.advertised_base}/{app}/requests/{request_id}"
        return json_response(
            {
                "request_id": request_id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            }
        )

    def _status(self, entry: dict[str, Any]) -> Response:
        entry["polls"] += 1
        if entry["polls"] < self.polls_until_done:
            return json_response({"status": "IN_PROGRESS", "logs": None}, 202)
        if self.fail_requests_with:
            return json_response({"status": self.failure_status, "error": self.fail_requests_with})
        return json_response({"status": "COMPLETED", "metrics": {"inference_time": 0.1}})

    def _result(self, entry: dict[str, Any]) -> Response:
        if entry["polls"] < self.polls_until_done:
            return json_response({"detail": "Request is still in progress"}, 400)
        if self.output_kind == "video":
            return json_response({"video": {"url": self.add_file("out.mp4", make_mp4(), "video/mp4")}})
        if self.output_kind in ("audio", "audio_url"):
            url = self.add_file("out.wav", make_wav(1.25), "audio/wav")
            return json_response({"audio": {"url": url}} if self.output_kind == "audio" else {"audio_url": url})
        size = entry["input"].get("image_size") or {"width": 64, "height": 48}
        url = self.add_file("out.png", make_png(size["width"], size["height"]), "image/png")
        image = {"url": url, "width": size["width"], "height": size["height"], "content_type": "image/png"}
        return json_response({"images": [image], "seed": 42, "has_nsfw_concepts": [False]})
