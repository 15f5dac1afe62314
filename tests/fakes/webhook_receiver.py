"""A loopback endpoint for Flixly's own webhooks: records each POST and answers with `status` (and `headers`)."""

from .server import FakeServer, Recorded, Response


class FakeWebhookReceiver(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.headers: dict[str, str] = {}  # sent with every answer (a Location, say)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks"

    def route(self, request: Recorded) -> Response:
        return Response(self.status, headers=self.headers)

    def posts(self) -> list[Recorded]:
        return self.received("POST")

    def events(self) -> list[dict]:
        return [post.json for post in self.posts()]
