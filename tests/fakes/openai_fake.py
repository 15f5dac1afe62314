"""An OpenAI-compatible upstream: /v1/chat/completions (plain and SSE), /v1/images/generations, /v1/audio/speech."""

import base64
import json

from .server import FakeServer, Recorded, Response, json_response, make_png, make_wav


class FakeOpenAI(FakeServer):
    def __init__(self, api_key: str | None = "sk-test-openai") -> None:
        super().__init__()
        self.expected_auth = f"Bearer {api_key}" if api_key else None
        self.chat_reply = "Hello from the fake."
        self.stream_deltas = ["Hel", "lo", " there"]
        self.stream_error_after: int | None = None  # send an error chunk after this many deltas
        self.image_as_url = False  # answer images with data[0].url instead of b64_json
        self.speech_seconds = 0.75

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def route(self, request: Recorded) -> Response:
        if failure := self.take_submit_failure():
            return failure
        routes = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/images/generations"): self._image,
            ("POST", "/v1/audio/speech"): self._speech,
        }
        handler = routes.get((request.method, request.path))
        return handler(request) if handler else json_response({"error": {"message": "Not found"}}, 404)

    def _chat(self, request: Recorded) -> Response:
        if request.json.get("stream"):
            return self._chat_stream(
                include_usage=bool((request.json.get("stream_options") or {}).get("include_usage"))
            )
        return json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": request.json["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": self.chat_reply}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
            }
        )

    def _chat_stream(self, *, include_usage: bool) -> Response:
        def event(data: object) -> bytes:
            return f"data: {json.dumps(data)}\n\n".encode()

        deltas = self.stream_deltas[: self.stream_error_after]
        chunks = [event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
        chunks += [event({"choices": [{"index": 0, "delta": {"content": delta}}]}) for delta in deltas]
        if self.stream_error_after is not None:
            return Response(200, [*chunks, event({"error": {"message": "overloaded"}})], "text/event-stream")
        chunks += [b": keep-alive\n\n", event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})]
        if include_usage:
            chunks.append(event({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3}}))
        return Response(200, [*chunks, b"data: [DONE]\n\n"], "text/event-stream")

    def _image(self, request: Recorded) -> Response:
        width, height = (int(side) for side in request.json["size"].split("x"))
        png = make_png(width, height)
        if self.image_as_url:
            return json_response({"created": 1, "data": [{"url": self.add_file("image.png", png, "image/png")}]})
        return json_response({"created": 1, "data": [{"b64_json": base64.b64encode(png).decode()}]})

    def _speech(self, request: Recorded) -> Response:
        return Response(200, make_wav(self.speech_seconds), "audio/wav")
