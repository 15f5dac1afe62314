"""The OpenAI-compatible surface, driven by the official `openai` client against a live server."""

import base64
import io
import re
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import imageio_ffmpeg
import openai
import pytest
from PIL import Image

from billing.models import LedgerEntry
from billing.services import wallet_balance
from generation.audio import ConversionFailed
from generation.models import Job, JobStatus

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "What is a lighthouse?"}]


@pytest.fixture
def openai_client(live_server) -> Iterator[Callable[..., openai.OpenAI]]:
    """Makes official clients of the live server's surface, closed after the test: a keep-alive connection left
    open keeps a live server thread waiting on it for the rest of the session."""
    made: list[openai.OpenAI] = []

    def make(api_key: str, **options: Any) -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=f"{live_server.url}/openai/v1", api_key=api_key, **options))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def ai(live_server, openai_client, raw_key, funded, settings) -> openai.OpenAI:
    settings.SITE_URL = live_server.url  # output links point at the live server
    return openai_client(raw_key, max_retries=0)


def test_models_lists_the_catalog(ai):
    ids = {model.id for model in ai.models.list()}
    assert {"local-chat", "local-image", "flux-dev", "kling-3.0"} <= ids


def test_one_model_is_retrieved_by_id(ai):
    model = ai.models.retrieve("local-chat")
    assert (model.id, model.object) == ("local-chat", "model")
    with pytest.raises(openai.NotFoundError):
        ai.models.retrieve("no-such-model")


def test_a_chat_completion_is_a_charged_job(ai, funded):
    completion = ai.chat.completions.create(model="local-chat", messages=MESSAGES, max_tokens=50)
    assert completion.choices[0].message.content.startswith("Local engine reply")
    assert completion.choices[0].finish_reason == "stop" and completion.usage.total_tokens > 0
    job = Job.objects.get()
    assert (job.status, job.type, completion.id) == (JobStatus.COMPLETED, "CHAT", f"chatcmpl-{job.id}")
    assert LedgerEntry.objects.filter(reference_id=str(job.id)).exists()
    assert wallet_balance(user_id=funded.pk) == 100 - job.credits_charged


def test_a_streamed_completion_carries_the_same_reply(ai):
    whole = ai.chat.completions.create(model="local-chat", messages=MESSAGES).choices[0].message.content
    stream = ai.chat.completions.create(
        model="local-chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].usage.completion_tokens > 0


def test_answers_carry_the_api_headers(live_server, raw_key, funded):
    response = httpx.post(
        f"{live_server.url}/openai/v1/chat/completions",
        json={"model": "local-chat", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {raw_key}"},
    )
    assert response.status_code == 200
    assert {"x-ratelimit-limit", "x-credit-balance", "x-request-id", "x-token-expires"} <= set(response.headers)


@pytest.mark.parametrize(("stream", "content_type"), [(True, "text/event-stream"), (False, "application/json")])
def test_an_accept_header_asking_for_events_is_answered(live_server, raw_key, funded, stream, content_type):
    # Clients other than the Python one send `Accept: text/event-stream` with `stream: true`; OpenAI
    # answers whatever the Accept header says, and so do we.
    response = httpx.post(
        f"{live_server.url}/openai/v1/chat/completions",
        json={"model": "local-chat", "messages": MESSAGES, "stream": stream},
        headers={"Authorization": f"Bearer {raw_key}", "Accept": "text/event-stream"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith(content_type)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("chat/completions", {"model": "local-chat", "messages": MESSAGES}),
        ("images/generations", {"model": "local-image", "prompt": "a cat"}),
        ("audio/speech", {"model": "local-speech", "input": "hello", "voice": "f1"}),
    ],
)
def test_a_replayed_idempotency_key_says_so_as_on_generate(live_server, raw_key, funded, path, body):
    headers = {"Authorization": f"Bearer {raw_key}", "Idempotency-Key": f"once-{path}"}
    first = httpx.post(f"{live_server.url}/openai/v1/{path}", json=body, headers=headers, timeout=60)
    again = httpx.post(f"{live_server.url}/openai/v1/{path}", json=body, headers=headers, timeout=60)
    assert first.status_code == again.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert Job.objects.count() == 1


def test_stream_null_is_an_ordinary_completion(ai):
    completion = ai.chat.completions.create(model="local-chat", messages=MESSAGES, stream=None)
    assert completion.choices[0].message.content


def test_text_parts_are_read_as_one_message(ai):
    parts = [{"role": "user", "content": [{"type": "text", "text": "What is a "}, {"type": "text", "text": "cat?"}]}]
    assert "cat" in ai.chat.completions.create(model="local-chat", messages=parts).choices[0].message.content


def test_an_image_comes_back_as_a_url_or_base64(ai):
    by_url = ai.images.generate(model="local-image", prompt="a red fox", size="256x320")
    image = Image.open(io.BytesIO(httpx.get(by_url.data[0].url).content))
    assert image.size == (256, 320)
    inline = ai.images.generate(model="local-image", prompt="a red fox", response_format="b64_json", size="256x256")
    assert Image.open(io.BytesIO(base64.b64decode(inline.data[0].b64_json))).size == (256, 256)


def test_size_auto_is_the_models_default_size(ai):
    ai.images.generate(model="local-image", prompt="a red fox", size="auto")  # the client offers it
    assert {key: Job.objects.get().params[key] for key in ("width", "height")} == {"width": 1024, "height": 1024}


def decoded_seconds(audio: bytes, *input_format: str) -> float:
    """The audio's length as ffmpeg decodes it (`input_format`: the options raw PCM needs)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    command = [ffmpeg, "-hide_banner", *input_format, "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "8000", "-"]
    done = subprocess.run(command, input=audio, capture_output=True, timeout=30, check=True)
    return len(done.stdout) / 2 / 8000


@pytest.mark.espeak
def test_speech_comes_back_as_mp3_by_default_as_from_openai(ai):
    audio = ai.audio.speech.create(model="local-speech", input="Hello there, general", voice="f1")
    assert audio.response.headers["content-type"] == "audio/mpeg"
    assert audio.content[:3] == b"ID3" or audio.content[0] == 0xFF  # a tag or an MPEG frame's sync
    job = Job.objects.get()
    assert decoded_seconds(audio.content) == pytest.approx(job.outputs[0]["durationSeconds"], abs=0.1)


@pytest.mark.espeak
@pytest.mark.parametrize(
    ("response_format", "content_type", "magic"),
    [
        ("wav", "audio/wav", b"RIFF"),
        ("flac", "audio/flac", b"fLaC"),
        ("opus", "audio/ogg", b"OggS"),
        ("aac", "audio/aac", b"\xff\xf1"),
    ],
)
def test_speech_comes_in_each_of_openais_formats(ai, response_format, content_type, magic):
    speech = {"model": "local-speech", "input": "Hello there", "voice": "f1"}
    audio = ai.audio.speech.create(**speech, response_format=response_format)
    assert audio.response.headers["content-type"] == content_type
    assert audio.content.startswith(magic)
    assert decoded_seconds(audio.content) == pytest.approx(Job.objects.get().outputs[0]["durationSeconds"], abs=0.1)


@pytest.mark.espeak
def test_speech_as_pcm_is_raw_24khz_16_bit_mono_as_from_openai(ai):
    audio = ai.audio.speech.create(model="local-speech", input="Hello there", voice="f1", response_format="pcm")
    assert audio.response.headers["content-type"] == "audio/pcm"
    seconds = Job.objects.get().outputs[0]["durationSeconds"]
    assert len(audio.content) / 2 / 24_000 == pytest.approx(seconds, abs=0.05)
    assert decoded_seconds(audio.content, "-f", "s16le", "-ar", "24000", "-ac", "1") == pytest.approx(seconds, abs=0.05)


@pytest.mark.espeak
def test_speech_that_cannot_be_converted_is_a_500_naming_the_job_and_not_retried(ai, monkeypatch, caplog):
    def broken(audio: bytes, response_format: str) -> bytes:
        raise ConversionFailed("Unknown encoder")

    monkeypatch.setattr("generation.api.openai.speech_convert", broken)
    retrying = ai.with_options(max_retries=2)  # the client's default: a retry would be another paid job
    with pytest.raises(openai.InternalServerError) as raised:
        retrying.audio.speech.create(model="local-speech", input="Hello there", voice="f1", response_format="flac")
    job = Job.objects.get()
    assert raised.value.body["code"] == "internal_error" and f"/api/v1/jobs/{job.id}" in raised.value.message
    assert job.status == JobStatus.COMPLETED and "Unknown encoder" in caplog.text


@pytest.mark.espeak
def test_an_openai_voice_the_model_lacks_falls_back_to_its_default_voice(ai):
    audio = ai.audio.speech.create(model="local-speech", voice="alloy", input="Hello there")
    assert audio.content and Job.objects.get().params["voice"] == "f1"  # local-speech's default, as used


def test_an_openai_voice_the_model_offers_is_used_as_is(ai):
    ai.audio.speech.create(model="openai-tts", voice="coral", input="Hello there", response_format="wav")
    assert Job.objects.get().params["voice"] == "coral"


def test_an_openai_voice_is_dropped_for_a_model_without_voices(ai):
    ai.audio.speech.create(model="chatterbox", voice="alloy", input="Hello there", response_format="wav")
    assert "voice" not in Job.objects.get().params


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda ai: ai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES), "model"),
        (lambda ai: ai.chat.completions.create(model="local-chat", messages=MESSAGES, max_tokens=0), "max_tokens"),
        (
            lambda ai: ai.chat.completions.create(model="local-chat", messages=MESSAGES, max_completion_tokens=0),
            "max_completion_tokens",
        ),
        (lambda ai: ai.images.generate(model="local-image", prompt="x", size="big"), "size"),
        (lambda ai: ai.chat.completions.create(model="local-image", messages=MESSAGES), "model"),
        (lambda ai: ai.images.generate(model="local-image", prompt="x", n=2), "n"),
        (lambda ai: ai.chat.completions.create(model="local-chat", messages=MESSAGES, n=2), "n"),
        (lambda ai: ai.chat.completions.create(model="local-chat", messages=MESSAGES, stream="yes"), "stream"),
        (
            lambda ai: ai.chat.completions.create(model="local-chat", messages=[{"role": "user", "content": "\x00"}]),
            "messages",
        ),
        (
            lambda ai: ai.chat.completions.create(model="local-chat", messages=[{"role": ["user"], "content": "a"}]),
            "messages",
        ),
        (
            lambda ai: ai.chat.completions.create(model="local-chat", messages=[{"role": {}, "content": "a"}]),
            "messages",
        ),
        (
            lambda ai: ai.chat.completions.create(model="local-chat", messages=[{"role": "user", "content": []}]),
            "messages",
        ),
        (
            lambda ai: ai.chat.completions.create(
                model="local-chat", messages=[{"role": "user", "content": [{"type": "text"}]}]
            ),
            "messages",
        ),
        (
            lambda ai: ai.chat.completions.create(
                model="local-chat", messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]
            ),
            "messages",
        ),
        (lambda ai: ai.images.generate(model="local-image", prompt="x", size="\uff12\uff15\uff16x256"), "size"),
        (lambda ai: ai.audio.speech.create(model="local-speech", input="x", voice="nobody"), "voice"),
        (lambda ai: ai.audio.speech.create(model="local-speech", input="x", voice={"id": "alloy"}), "voice"),
        (
            lambda ai: ai.audio.speech.create(model="local-speech", input="x", voice="f1", response_format="ogg"),
            "response_format",
        ),
        (
            lambda ai: ai.audio.speech.create(model="local-speech", input="x", voice="f1", stream_format="sse"),
            "stream_format",
        ),
        *(
            (
                lambda ai, value=value: ai.audio.speech.create(
                    model="local-speech", input="x", voice="f1", extra_body={"response_format": value}
                ),
                "response_format",
            )
            for value in ({"a": 1}, ["mp3"], [], 3)
        ),
        *(
            (
                lambda ai, value=value: ai.images.generate(
                    model="local-image", prompt="x", extra_body={"response_format": value}
                ),
                "response_format",
            )
            for value in ({"a": 1}, ["url"], [], 0)
        ),
    ],
)
def test_bad_input_is_a_422_naming_openais_field(ai, call, field):
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        call(ai)
    assert field in raised.value.body["details"]
    assert not {"maxTokens", "prompt"} & set(re.findall(r"\w+", str(raised.value.body["details"])))  # not ours
    assert f"{field}: " in raised.value.message  # the client shows only the message: it carries the reason
    assert (raised.value.type, raised.value.param) == ("invalid_request_error", field)  # OpenAI's error fields
    assert not Job.objects.exists()


def test_a_size_too_large_both_ways_is_named_once(ai):
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        ai.images.generate(model="local-image", prompt="x", size="100000x100000")
    reasons = raised.value.body["details"]["size"]
    assert len(reasons) == len(set(reasons)) == 1 and raised.value.message.count(reasons[0]) == 1


def test_a_missing_key_is_a_401(openai_client):
    ai = openai_client("flx_live_" + "0" * 40, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        ai.chat.completions.create(model="local-chat", messages=MESSAGES)
    assert raised.value.type == "authentication_error" and raised.value.body["code"] == "unauthorized"


def test_too_few_credits_is_a_402_and_nothing_is_charged(openai_client, user, make_key):
    ai = openai_client(make_key(user), max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        ai.chat.completions.create(model="local-chat", messages=MESSAGES)
    assert raised.value.status_code == 402 and not Job.objects.exists()
    assert raised.value.type == "insufficient_quota"  # OpenAI's type for an account out of credit
    assert raised.value.param is None  # its details (the price, the balance) are no request fields


@pytest.mark.parametrize(
    ("request_args", "status", "kind"),
    [
        (("GET", "/openai/v1/no-such-thing"), 404, "invalid_request_error"),
        (
            (
                "POST",
                "/openai/v1/chat/completions",
                {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            ),
            422,
            "invalid_request_error",
        ),
        (("GET", "/openai/v1/models", {"headers": {"Authorization": "Bearer nope"}}), 401, "authentication_error"),
        (("POST", "/openai/v1/chat/completions", {"content": b"x" * (7 * 1024 * 1024)}), 413, "invalid_request_error"),
    ],
)
def test_every_error_of_the_surface_carries_openais_type(live_server, raw_key, request_args, status, kind):
    method, path, *extra = request_args
    options = extra[0] if extra else {}
    headers = {"Authorization": f"Bearer {raw_key}", **options.get("headers", {})}
    response = httpx.request(method, f"{live_server.url}{path}", content=options.get("content"), headers=headers)
    error = response.json()["error"]
    assert (response.status_code, error["status"], error["type"]) == (status, status, kind)
    assert "param" in error and "code" in error  # as OpenAI's errors, next to the contract's own fields
    assert error["param"] is None  # none of these is about one field: OpenAI sends null then


@pytest.fixture
def failing_model(scripted) -> str:
    from generation.providers.base import ProviderError

    scripted.script = [ProviderError("upstream said no", transient=False)] * 3
    return "scripted-chat"


def test_a_failed_job_is_a_503_the_client_does_not_retry(openai_client, raw_key, funded, failing_model):
    ai = openai_client(raw_key)  # the client's default retries
    with pytest.raises(openai.InternalServerError) as raised:
        ai.chat.completions.create(model=failing_model, messages=MESSAGES)
    assert raised.value.status_code == 503 and raised.value.response.headers["x-should-retry"] == "false"
    assert Job.objects.count() == 1 and wallet_balance(user_id=funded.pk) == 100


def test_a_job_past_the_wait_is_canceled_and_refunded(openai_client, raw_key, funded, no_worker, monkeypatch):
    from generation.api import openai as surface

    monkeypatch.setattr(surface, "WAIT_SECONDS", 0)
    ai = openai_client(raw_key)
    with pytest.raises(openai.InternalServerError) as raised:
        ai.chat.completions.create(model="local-chat", messages=MESSAGES)
    assert "canceled; its credits were refunded" in raised.value.message
    assert [job.status for job in Job.objects.all()] == [JobStatus.CANCELED]
    assert wallet_balance(user_id=funded.pk) == 100


@pytest.mark.parametrize("stream", [False, True])
def test_past_the_plans_parallel_tasks_of_waiting_calls_a_call_is_a_429_before_any_charge(ai, funded, stream):
    from accounts.ratelimit import account_bucket, wait_slot

    held = wait_slot(bucket=account_bucket(funded.pk), limit=funded.plan.parallel_tasks)  # another call waiting
    try:
        with pytest.raises(openai.RateLimitError) as raised:
            ai.chat.completions.create(model="local-chat", messages=MESSAGES, stream=stream)
    finally:
        held.release()
    assert raised.value.response.headers["Retry-After"]
    assert not Job.objects.exists() and wallet_balance(user_id=funded.pk) == 100
    list(ai.chat.completions.create(model="local-chat", messages=MESSAGES, stream=True))  # the slot is free again
    ai.chat.completions.create(model="local-chat", messages=MESSAGES)  # and the stream gave it back


def test_the_developer_role_and_a_cut_reply(ai):
    messages = [{"role": "developer", "content": "Be brief."}, *MESSAGES]
    completion = ai.chat.completions.create(model="local-chat", messages=messages, max_tokens=2)
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 2


def test_max_tokens_counts_when_max_completion_tokens_is_null(ai):
    completion = ai.chat.completions.create(
        model="local-chat", messages=MESSAGES, max_tokens=2, max_completion_tokens=None
    )
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 2


CHAT = {"model": "local-chat", "messages": [{"role": "user", "content": "hi"}]}
TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize(
    ("asked", "field"),
    [
        ({"tools": [TOOL]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"functions": [TOOL["function"]]}, "functions"),
        ({"function_call": {"name": "weather"}}, "function_call"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"web_search_options": {}}, "web_search_options"),
    ],
)
def test_a_chat_asking_for_what_flixly_cannot_give_is_a_422_not_a_plain_reply(ai, asked, field):
    # Answered with plain text, a tool-calling agent or a JSON parser would fail later, far from the cause.
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        ai.chat.completions.create(**CHAT, extra_body=asked)
    assert (raised.value.param, field in raised.value.body["details"]) == (field, True)
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "asked",
    [
        {"tools": [], "tool_choice": "none", "parallel_tool_calls": False},
        {"response_format": {"type": "text"}, "logprobs": False, "modalities": ["text"]},
        {"functions": None, "function_call": "auto", "audio": None, "prediction": None, "top_logprobs": 0},
    ],
)
def test_the_same_fields_asking_for_plain_text_are_answered(ai, asked):
    assert ai.chat.completions.create(**CHAT, extra_body=asked).choices[0].message.content
