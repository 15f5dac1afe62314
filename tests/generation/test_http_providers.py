"""The OpenAI-compatible, Replicate and fal providers against loopback fakes of their wire formats."""

import base64
import logging
import socket
import time
import wave
from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from generation.providers import http
from generation.providers.base import GenerationRequest, GenerationResult, OutputFile, Provider, ProviderError
from generation.providers.fal import FalProvider
from generation.providers.openai_compatible import OpenAICompatibleProvider
from generation.providers.replicate import ReplicateProvider
from tests.fakes import FakeFal, FakeOpenAI, FakeReplicate, make_png

OPENAI_KEY = "sk-test-openai"
REPLICATE_TOKEN = "r8_test_replicate_token"
FAL_KEY = "fal-test-key:secret"


# --- fixtures and helpers ----------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _short_timeout(settings):
    settings.FLIXLY_PROVIDER_TIMEOUT = 5


@pytest.fixture
def openai_fake(settings):
    with FakeOpenAI(OPENAI_KEY) as fake:
        settings.OPENAI_BASE_URL = fake.api_base
        settings.OPENAI_API_KEY = OPENAI_KEY
        yield fake


@pytest.fixture
def replicate_fake(settings):
    with FakeReplicate(REPLICATE_TOKEN) as fake:
        settings.REPLICATE_API_BASE = fake.base_url
        settings.REPLICATE_API_TOKEN = REPLICATE_TOKEN
        yield fake


@pytest.fixture
def fal_fake(settings):
    with FakeFal(FAL_KEY) as fake:
        settings.FAL_API_BASE = fake.base_url
        settings.FAL_KEY = FAL_KEY
        yield fake


@pytest.fixture
def input_image(tmp_path) -> Path:
    path = tmp_path / "input.png"
    path.write_bytes(make_png(40, 30, "orange"))
    return path


def make_request(tmp_path: Path, job_type: str, upstream_model: str, image_path: Path | None = None, **params):
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return GenerationRequest("job-1", job_type, "catalog-model", upstream_model, params, workdir, image_path)


def fast(provider: Provider) -> Provider:
    provider.poll_interval = 0.01
    provider.max_poll_interval = 0.02
    return provider


def run(provider: Provider, request: GenerationRequest, seconds: float = 10) -> tuple[GenerationResult, list[int]]:
    progress: list[int] = []
    result = fast(provider).run(request, progress.append, time.monotonic() + seconds)
    return result, progress


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def error_text(exc: BaseException) -> str:
    """The message plus every chained cause: none of it may carry a credential."""
    parts = []
    while exc is not None:
        parts.append(f"{exc!r} {exc}")
        exc = exc.__cause__ or exc.__context__
    return " ".join(parts)


def assert_png(output: OutputFile, width: int, height: int) -> None:
    assert output.content_type == "image/png"
    assert output.path.suffix == ".png"
    assert output.bytes == output.path.stat().st_size > 0
    assert (output.width, output.height) == (width, height)
    with Image.open(output.path) as image:
        image.load()
        assert image.size == (width, height)


def assert_wav(output: OutputFile, seconds: float) -> None:
    assert output.content_type == "audio/wav"
    assert output.path.suffix == ".wav"
    assert output.bytes == output.path.stat().st_size
    assert output.duration_seconds == pytest.approx(seconds)
    with wave.open(str(output.path)) as audio:
        assert audio.getnframes() / audio.getframerate() == pytest.approx(seconds)


def assert_mp4(output: OutputFile) -> None:
    assert output.content_type == "video/mp4"
    assert output.path.suffix == ".mp4"
    assert (output.width, output.height) == (64, 64)
    assert output.duration_seconds == pytest.approx(1.0, abs=0.1)
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(output.path))
    assert frames > 0


# --- OpenAI-compatible -------------------------------------------------------------------------------
def test_openai_chat_returns_the_reply_and_token_usage(openai_fake, tmp_path):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    request = make_request(tmp_path, "CHAT", "gpt-4o-mini", messages=messages, maxTokens=50)

    result, progress = run(OpenAICompatibleProvider(), request)

    assert result.text == "Hello from the fake."
    assert result.usage == {"promptTokens": 12, "completionTokens": 5}
    assert progress == [100]
    (sent,) = openai_fake.received("POST", "/v1/chat/completions")
    assert sent.json == {"model": "gpt-4o-mini", "messages": messages, "max_tokens": 50}
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_openai_chat_without_messages_sends_the_prompt_as_one_user_message(openai_fake, tmp_path):
    run(OpenAICompatibleProvider(), make_request(tmp_path, "CHAT", "llama3", prompt="Tell me a joke"))

    (sent,) = openai_fake.received("POST", "/v1/chat/completions")
    assert sent.json == {"model": "llama3", "messages": [{"role": "user", "content": "Tell me a joke"}]}


def test_openai_image_is_decoded_from_b64_json_into_a_measured_png(openai_fake, tmp_path):
    request = make_request(tmp_path, "TEXT_TO_IMAGE", "dall-e-3", prompt="a fox", width=96, height=64)

    result, _ = run(OpenAICompatibleProvider(), request)

    (output,) = result.outputs
    assert_png(output, 96, 64)
    assert output.path.parent == request.workdir
    (sent,) = openai_fake.received("POST", "/v1/images/generations")
    assert sent.json == {"model": "dall-e-3", "prompt": "a fox", "n": 1, "size": "96x64", "response_format": "b64_json"}


def test_openai_image_answered_with_a_url_is_downloaded_without_the_key(openai_fake, tmp_path):
    openai_fake.image_as_url = True
    request = make_request(tmp_path, "TEXT_TO_IMAGE", "dall-e-2", prompt="a fox", width=32, height=32)

    result, _ = run(OpenAICompatibleProvider(), request)

    assert_png(result.outputs[0], 32, 32)
    (download,) = openai_fake.received("GET", "/files/")
    assert "authorization" not in download.headers


def test_openai_speech_is_saved_as_a_wav_with_its_duration(openai_fake, tmp_path):
    request = make_request(tmp_path, "TEXT_TO_SPEECH", "tts-1", prompt="Hello", voice="nova", speed=1.25)

    result, _ = run(OpenAICompatibleProvider(), request)

    assert_wav(result.outputs[0], 0.75)
    (sent,) = openai_fake.received("POST", "/v1/audio/speech")
    assert sent.json == {"model": "tts-1", "input": "Hello", "voice": "nova", "speed": 1.25, "response_format": "wav"}


def test_openai_chat_passes_each_piece_on_as_it_streams_when_asked(openai_fake, tmp_path):
    pieces: list[str] = []
    request = make_request(tmp_path, "CHAT", "gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], maxTokens=20)

    result, _ = run(OpenAICompatibleProvider(), replace(request, on_text=pieces.append))

    assert [piece for piece in pieces if piece] == ["Hel", "lo", " there"]  # empty ones let the writer flush
    assert (result.text, result.usage) == ("Hello there", {"promptTokens": 9, "completionTokens": 3})
    (sent,) = openai_fake.received("POST", "/v1/chat/completions")
    assert sent.json["stream"] is True and sent.json["stream_options"] == {"include_usage": True}
    assert sent.json["max_tokens"] == 20


@pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (429, True), (400, False), (404, False)])
def test_openai_errors_are_classified_by_status_and_hide_the_key(openai_fake, tmp_path, status, transient):
    openai_fake.fail_next_submit_with = status

    with pytest.raises(ProviderError) as caught:
        run(OpenAICompatibleProvider(), make_request(tmp_path, "TEXT_TO_IMAGE", "dall-e-3", prompt="x"))

    assert caught.value.transient is transient
    assert OPENAI_KEY not in error_text(caught.value)
    assert "Bearer" not in error_text(caught.value)


def test_a_stream_that_fails_before_its_first_piece_may_be_retried(openai_fake, tmp_path):
    openai_fake.fail_next_submit_with = 503
    request = make_request(tmp_path, "CHAT", "gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])

    with pytest.raises(ProviderError) as caught:
        run(OpenAICompatibleProvider(), replace(request, on_text=lambda piece: None))

    assert caught.value.transient is True


def test_a_stream_that_fails_after_a_piece_went_out_is_final(openai_fake, tmp_path):
    # A retry would write the reader a second, different reply after the first one's start.
    openai_fake.stream_error_after = 1
    pieces: list[str] = []
    request = make_request(tmp_path, "CHAT", "gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])

    with pytest.raises(ProviderError) as caught:
        run(OpenAICompatibleProvider(), replace(request, on_text=pieces.append))

    assert [piece for piece in pieces if piece] == ["Hel"] and caught.value.transient is False


def test_openai_unreachable_server_is_transient(settings, tmp_path):
    settings.OPENAI_BASE_URL = closed_port_url() + "/v1"

    with pytest.raises(ProviderError, match="Could not reach") as caught:
        run(OpenAICompatibleProvider(), make_request(tmp_path, "CHAT", "llama3", prompt="Hi"))

    assert caught.value.transient is True


def test_openai_without_a_key_sends_no_authorization_header(settings, tmp_path):
    with FakeOpenAI(api_key=None) as fake:
        settings.OPENAI_BASE_URL = fake.api_base
        settings.OPENAI_API_KEY = ""
        result, _ = run(OpenAICompatibleProvider(), make_request(tmp_path, "CHAT", "llama3", prompt="Hi"))

    assert result.text == "Hello from the fake."
    assert "authorization" not in fake.requests[0].headers


def test_openai_rejects_job_types_it_cannot_run(openai_fake, tmp_path):
    with pytest.raises(ProviderError, match="does not support TEXT_TO_VIDEO") as caught:
        OpenAICompatibleProvider().submit(make_request(tmp_path, "TEXT_TO_VIDEO", "sora", prompt="x"))

    assert caught.value.transient is False
    assert openai_fake.requests == []


def test_openai_cancel_drops_the_kept_result(openai_fake, tmp_path):
    provider = OpenAICompatibleProvider()
    request = make_request(tmp_path, "CHAT", "gpt-4o-mini", prompt="Hi")
    upstream_id = provider.submit(request)

    provider.cancel(request, upstream_id)

    assert provider.poll(request, upstream_id).status == "failed"
    with pytest.raises(ProviderError):
        provider.fetch_outputs(request, upstream_id)


# --- Replicate ---------------------------------------------------------------------------------------
def test_replicate_image_run_downloads_the_output_and_reports_log_progress(replicate_fake, tmp_path):
    request = make_request(tmp_path, "TEXT_TO_IMAGE", "black-forest-labs/flux-schnell", prompt="a fox")

    result, progress = run(ReplicateProvider(), request)

    (output,) = result.outputs
    assert_png(output, 64, 48)
    assert progress == [40, 100]
    (download,) = replicate_fake.received("GET", "/files/")
    assert "authorization" not in download.headers


def test_replicate_sends_mapped_inputs_a_data_uri_image_and_the_token(replicate_fake, tmp_path, input_image):
    params = {
        "prompt": "waves",
        "negativePrompt": "blur",
        "width": 640,
        "height": 360,
        "steps": 30,
        "seed": 7,
        "duration": 5,
        "resolution": "720p",
        "fps": 24,
        "style": None,
        "voice": None,
    }
    request = make_request(tmp_path, "IMAGE_TO_VIDEO", "wan-video/wan-2.1-i2v", input_image, **params)

    ReplicateProvider().submit(request)

    (sent,) = replicate_fake.received("POST", "/v1/models/wan-video/wan-2.1-i2v/predictions")
    assert sent.headers["authorization"] == f"Bearer {REPLICATE_TOKEN}"
    assert sent.json == {
        "input": {
            "prompt": "waves",
            "negative_prompt": "blur",
            "width": 640,
            "height": 360,
            "num_inference_steps": 30,
            "seed": 7,
            "duration": 5,
            "resolution": "720p",
            "fps": 24,
            "image": data_uri(input_image),
        }
    }


def test_replicate_versioned_model_is_created_through_the_predictions_endpoint(replicate_fake, tmp_path):
    request = make_request(tmp_path, "TEXT_TO_IMAGE", "stability-ai/sdxl:39ed52f2a78e", prompt="a fox")

    ReplicateProvider().submit(request)

    (sent,) = replicate_fake.received("POST", "/v1/predictions")
    assert sent.json == {"version": "39ed52f2a78e", "input": {"prompt": "a fox"}}


def test_replicate_video_run_measures_the_mp4(replicate_fake, tmp_path, input_image):
    replicate_fake.output_kind = "video"
    request = make_request(tmp_path, "IMAGE_TO_VIDEO", "owner/video", input_image, prompt="go")

    result, _ = run(ReplicateProvider(), request)

    assert_mp4(result.outputs[0])


def test_replicate_speech_run_measures_the_wav(replicate_fake, tmp_path):
    replicate_fake.output_kind = "audio"
    request = make_request(tmp_path, "TEXT_TO_SPEECH", "owner/tts", prompt="Hello", voice="af_bella", speed=1.0)

    result, _ = run(ReplicateProvider(), request)

    assert_wav(result.outputs[0], 1.5)
    assert replicate_fake.received("POST", "/predictions")[0].json["input"] == {
        "prompt": "Hello",
        "voice": "af_bella",
        "speed": 1.0,
    }


def test_replicate_list_output_downloads_every_file(replicate_fake, tmp_path):
    replicate_fake.output_kind = "images"

    result, _ = run(ReplicateProvider(), make_request(tmp_path, "TEXT_TO_IMAGE", "owner/model", prompt="x"))

    assert [output.path.name for output in result.outputs] == ["output-0.png", "output-1.png"]
    assert [output.width for output in result.outputs] == [32, 33]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_replicate_server_errors_and_rate_limits_are_transient(replicate_fake, tmp_path, status):
    replicate_fake.fail_next_submit_with = status

    with pytest.raises(ProviderError) as caught:
        ReplicateProvider().submit(make_request(tmp_path, "TEXT_TO_IMAGE", "owner/model", prompt="x"))

    assert caught.value.transient is True
    assert REPLICATE_TOKEN not in error_text(caught.value)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_replicate_client_errors_are_permanent(replicate_fake, tmp_path, status):
    replicate_fake.fail_next_submit_with = status

    with pytest.raises(ProviderError) as caught:
        ReplicateProvider().submit(make_request(tmp_path, "TEXT_TO_IMAGE", "owner/model", prompt="x"))

    assert caught.value.transient is False
    assert REPLICATE_TOKEN not in error_text(caught.value)


def test_replicate_wrong_token_is_a_permanent_error_that_hides_the_token(replicate_fake, settings, tmp_path):
    settings.REPLICATE_API_TOKEN = "r8_wrong_token_value"

    with pytest.raises(ProviderError, match="credentials") as caught:
        ReplicateProvider().submit(make_request(tmp_path, "TEXT_TO_IMAGE", "owner/model", prompt="x"))

    assert caught.value.transient is False
    assert "r8_wrong_token_value" not in error_text(caught.value)


def test_replicate_failed_prediction_raises_a_generic_error_without_the_token(replicate_fake, tmp_path, caplog):
    replicate_fake.fail_predictions_with = f"CUDA out of memory (auth {REPLICATE_TOKEN})"
    caplog.set_level(logging.WARNING)

    with pytest.raises(ProviderError) as caught:
        run(ReplicateProvider(), make_request(tmp_path, "TEXT_TO_IMAGE", "owner/model", prompt="x"))

    assert str(caught.value) == "Replicate prediction failed."
    assert caught.value.transient is False
    assert "CUDA out of memory" in caplog.text
    assert REPLICATE_TOKEN not in caplog.text
    assert list(tmp_path.joinpath("work").iterdir()) == []


def test_replicate_cancel_posts_to_the_cancel_endpoint(replicate_fake, tmp_path):
    provider = ReplicateProvider()
    request = make_request(tmp_path, "TEXT_TO_VIDEO", "owner/video", prompt="x")
    upstream_id = provider.submit(request)

    provider.cancel(request, upstream_id)

    (sent,) = replicate_fake.received("POST", f"/v1/predictions/{upstream_id}/cancel")
    assert sent.headers["authorization"] == f"Bearer {REPLICATE_TOKEN}"
    assert provider.poll(request, upstream_id).status == "canceled"


def test_replicate_deadline_passing_cancels_the_prediction_and_raises(replicate_fake, tmp_path):
    replicate_fake.polls_until_done = 10**6

    with pytest.raises(ProviderError, match="timed out"):
        run(ReplicateProvider(), make_request(tmp_path, "TEXT_TO_VIDEO", "owner/video", prompt="x"), seconds=0.2)

    assert len(replicate_fake.received("POST", "/cancel")) == 1


def test_replicate_unreachable_api_is_transient(settings, tmp_path):
    settings.REPLICATE_API_BASE = closed_port_url()
    settings.REPLICATE_API_TOKEN = REPLICATE_TOKEN

    with pytest.raises(ProviderError, match="Could not reach Replicate") as caught:
        ReplicateProvider().submit(make_request(tmp_path, "TEXT_TO_IMAGE", "owner/model", prompt="x"))

    assert caught.value.transient is True


def test_replicate_slow_api_times_out_as_transient(replicate_fake, settings, tmp_path):
    settings.FLIXLY_PROVIDER_TIMEOUT = 0.2
    replicate_fake.delay_seconds = 0.6

    with pytest.raises(ProviderError) as caught:
        ReplicateProvider().submit(make_request(tmp_path, "TEXT_TO_IMAGE", "owner/model", prompt="x"))

    assert caught.value.transient is True


# --- fal -----------------------------------------------------------------------------------------------
def test_fal_image_run_sends_image_size_and_polls_under_the_app_id(fal_fake, tmp_path):
    request = make_request(tmp_path, "TEXT_TO_IMAGE", "fal-ai/flux/dev", prompt="a fox", width=80, height=56, seed=3)

    result, progress = run(FalProvider(), request)

    assert_png(result.outputs[0], 80, 56)
    assert result.metadata == {"seed": 42}
    assert progress == [100]
    (sent,) = fal_fake.received("POST", "/fal-ai/flux/dev")
    assert sent.json == {"prompt": "a fox", "seed": 3, "image_size": {"width": 80, "height": 56}}
    assert sent.headers["authorization"] == f"Key {FAL_KEY}"
    polled = [r.path for r in fal_fake.received("GET") if not r.path.startswith("/files/")]
    assert polled == ["/fal-ai/flux/requests/req-1/status"] * 2 + ["/fal-ai/flux/requests/req-1"]
    (download,) = fal_fake.received("GET", "/files/")
    assert "authorization" not in download.headers


def test_fal_image_to_video_sends_the_input_image_as_a_data_uri_and_measures_the_mp4(fal_fake, tmp_path, input_image):
    fal_fake.output_kind = "video"
    params = {"prompt": "waves", "duration": 5, "resolution": "720p", "fps": 24, "negativePrompt": "blur"}
    request = make_request(tmp_path, "IMAGE_TO_VIDEO", "fal-ai/kling-video/v2/image-to-video", input_image, **params)

    result, _ = run(FalProvider(), request)

    assert_mp4(result.outputs[0])
    (sent,) = fal_fake.received("POST", "/fal-ai/kling-video/v2/image-to-video")
    assert sent.json == {
        "prompt": "waves",
        "negative_prompt": "blur",
        "duration": 5,
        "resolution": "720p",
        "fps": 24,
        "image_url": data_uri(input_image),
    }


@pytest.mark.parametrize("output_kind", ["audio", "audio_url"])
def test_fal_speech_result_is_downloaded_from_audio_or_audio_url(fal_fake, tmp_path, output_kind):
    fal_fake.output_kind = output_kind
    request = make_request(tmp_path, "TEXT_TO_SPEECH", "fal-ai/kokoro", prompt="Hi", voice="af_heart", language="en")

    result, _ = run(FalProvider(), request)

    assert_wav(result.outputs[0], 1.25)
    assert fal_fake.received("POST", "/fal-ai/kokoro")[0].json == {
        "prompt": "Hi",
        "voice": "af_heart",
        "language": "en",
    }


@pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (429, True), (400, False), (422, False)])
def test_fal_submit_errors_are_classified_by_status(fal_fake, tmp_path, status, transient):
    fal_fake.fail_next_submit_with = status

    with pytest.raises(ProviderError) as caught:
        FalProvider().submit(make_request(tmp_path, "TEXT_TO_IMAGE", "fal-ai/flux/dev", prompt="x"))

    assert caught.value.transient is transient
    assert FAL_KEY not in error_text(caught.value)
    assert "Key " not in error_text(caught.value)


@pytest.mark.parametrize("failure_status", ["COMPLETED", "FAILED", "ERROR"])
def test_fal_failed_request_raises_a_generic_error_without_the_key(fal_fake, tmp_path, caplog, failure_status):
    fal_fake.fail_requests_with = f"Invalid input, key={FAL_KEY}"
    fal_fake.failure_status = failure_status

    with pytest.raises(ProviderError) as caught:
        run(FalProvider(), make_request(tmp_path, "TEXT_TO_IMAGE", "fal-ai/flux/dev", prompt="x"))

    assert str(caught.value) == "fal request failed."
    assert caught.value.transient is False
    assert FAL_KEY not in caplog.text


def test_fal_cancel_puts_to_the_cancel_endpoint(fal_fake, tmp_path):
    provider = FalProvider()
    request = make_request(tmp_path, "TEXT_TO_VIDEO", "fal-ai/kling-video/v2/text-to-video", prompt="x")
    upstream_id = provider.submit(request)

    provider.cancel(request, upstream_id)

    (sent,) = fal_fake.received("PUT")
    assert sent.path == f"/fal-ai/kling-video/requests/{upstream_id}/cancel"
    assert fal_fake.queue[upstream_id]["canceled"] is True


def test_fal_deadline_passing_cancels_the_request_and_raises(fal_fake, tmp_path):
    fal_fake.polls_until_done = 10**6

    with pytest.raises(ProviderError, match="timed out"):
        run(FalProvider(), make_request(tmp_path, "TEXT_TO_VIDEO", "fal-ai/video", prompt="x"), seconds=0.2)

    assert len(fal_fake.received("PUT", "/cancel")) == 1


# --- configuration and shared download rules ---------------------------------------------------------------
def test_providers_are_not_configured_without_their_settings(settings, tmp_path):
    settings.OPENAI_BASE_URL = ""
    settings.OPENAI_API_KEY = "sk-set-but-useless-without-a-base-url"
    settings.REPLICATE_API_TOKEN = ""
    settings.FAL_KEY = ""

    assert not OpenAICompatibleProvider.is_configured()
    assert not ReplicateProvider.is_configured()
    assert not FalProvider.is_configured()
    with pytest.raises(ProviderError, match="not configured"):
        FalProvider().submit(make_request(tmp_path, "TEXT_TO_IMAGE", "fal-ai/flux/dev", prompt="x"))


def test_providers_are_configured_by_their_settings(settings):
    settings.OPENAI_BASE_URL = "http://localhost:11434/v1"
    settings.OPENAI_API_KEY = ""
    settings.REPLICATE_API_TOKEN = "r8_x"
    settings.FAL_KEY = "k"

    assert OpenAICompatibleProvider.is_configured()
    assert ReplicateProvider.is_configured()
    assert FalProvider.is_configured()


@pytest.mark.parametrize("stream_files", [False, True], ids=["declared-size", "counted-bytes"])
def test_outputs_over_the_download_cap_are_refused_and_not_kept(replicate_fake, tmp_path, monkeypatch, stream_files):
    monkeypatch.setattr(http, "MAX_DOWNLOAD_BYTES", 100)
    replicate_fake.stream_files = stream_files

    with pytest.raises(ProviderError, match="larger than") as caught:
        run(ReplicateProvider(), make_request(tmp_path, "TEXT_TO_IMAGE", "owner/model", prompt="x"))

    assert caught.value.transient is False
    assert list(tmp_path.joinpath("work").iterdir()) == []


def test_data_uri_outputs_are_decoded_and_measured(tmp_path):
    uri = "data:image/png;base64," + base64.b64encode(make_png(20, 10)).decode()

    output = http.download_output(uri, tmp_path / "output-0", what="Test")

    assert_png(output, 20, 10)


def test_an_output_without_a_useful_content_type_is_sniffed_from_its_bytes(tmp_path):
    output = http.save_bytes(make_png(12, 9), tmp_path / "image", what="Test", content_type="application/octet-stream")

    assert output.path.name == "image.png"
    assert_png(output, 12, 9)
