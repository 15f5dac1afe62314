"""Loopback fakes of the upstream APIs, speaking each one's documented wire format."""

from .fal_fake import FakeFal
from .openai_fake import FakeOpenAI
from .replicate_fake import FakeReplicate
from .server import FakeServer, Recorded, Response, json_response, make_mp4, make_png, make_wav
from .webhook_receiver import FakeWebhookReceiver

__all__ = [
    "FakeFal",
    "FakeOpenAI",
    "FakeReplicate",
    "FakeServer",
    "FakeWebhookReceiver",
    "Recorded",
    "Response",
    "json_response",
    "make_mp4",
    "make_png",
    "make_wav",
]
from .stripe_fake import FakeStripe, stripe_signature_header  # noqa: F401
