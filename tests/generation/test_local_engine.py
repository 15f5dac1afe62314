"""The local engine makes real files: every check here decodes the output instead of trusting the result's fields."""

import time
import wave
from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from generation.providers import local
from generation.providers.base import GenerationRequest, ProviderError
from generation.providers.local import LocalProvider, espeak_voice, generate

needs_espeak = pytest.mark.espeak


def make_request(workdir: Path, job_type: str, image_path: Path | None = None, **params) -> GenerationRequest:
    workdir.mkdir(parents=True, exist_ok=True)
    return GenerationRequest(
        job_id="job-1",
        type=job_type,
        model="local",
        upstream_model="local",
        params=params,
        workdir=workdir,
        image_path=image_path,
    )


def make_image(workdir: Path, prompt: str = "a red fox in the snow", **params) -> Path:
    params = {"width": 320, "height": 240, "seed": 7} | params
    return generate(make_request(workdir, "TEXT_TO_IMAGE", prompt=prompt, **params)).outputs[0].path


def video_facts(path: Path) -> tuple[tuple[int, int], int, float]:
    """Size from the stream header and the frame count from a full decode."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    return tuple(meta["size"]), frames, seconds


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


# Images


def test_text_to_image_writes_a_png_of_exactly_the_requested_size(tmp_path):
    result = generate(make_request(tmp_path, "TEXT_TO_IMAGE", prompt="a lighthouse", width=640, height=384, seed=1))

    output = result.outputs[0]
    with Image.open(output.path) as image:
        assert (image.format, image.size) == ("PNG", (640, 384))
    assert (output.content_type, output.width, output.height) == ("image/png", 640, 384)
    assert output.bytes == output.path.stat().st_size
    assert result.metadata == {"engine": "local", "seed": 1}


def test_text_to_image_defaults_to_1024_square(tmp_path):
    output = generate(make_request(tmp_path, "TEXT_TO_IMAGE", prompt="a lighthouse")).outputs[0]

    assert (output.width, output.height) == (1024, 1024)


def test_same_prompt_and_seed_give_byte_identical_images(tmp_path):
    first = make_image(tmp_path / "a", prompt="a castle on a hill", seed=5)
    second = make_image(tmp_path / "b", prompt="a castle on a hill", seed=5)

    assert first.read_bytes() == second.read_bytes()


def test_different_prompts_or_seeds_give_different_images(tmp_path):
    castle = make_image(tmp_path / "a", prompt="a castle on a hill").read_bytes()
    ocean = make_image(tmp_path / "b", prompt="a blue ocean wave").read_bytes()
    reseeded = make_image(tmp_path / "c", prompt="a castle on a hill", seed=8).read_bytes()

    assert castle != ocean
    assert castle != reseeded


def test_generated_image_is_a_picture_not_a_blank_card(tmp_path):
    with Image.open(make_image(tmp_path, prompt="a garden")) as image:
        assert len(image.convert("RGB").getcolors(1 << 24)) > 50


def test_missing_seed_is_derived_from_the_prompt_so_results_repeat(tmp_path):
    first = generate(make_request(tmp_path / "a", "TEXT_TO_IMAGE", prompt="a kite", width=64, height=64))
    second = generate(make_request(tmp_path / "b", "TEXT_TO_IMAGE", prompt="a kite", width=64, height=64))

    assert first.metadata["seed"] == second.metadata["seed"]
    assert first.outputs[0].path.read_bytes() == second.outputs[0].path.read_bytes()


def test_style_changes_the_image(tmp_path):
    plain = make_image(tmp_path / "a", prompt="a city").read_bytes()
    pixel = make_image(tmp_path / "b", prompt="a city", style="Pixel Art").read_bytes()

    assert plain != pixel


def test_image_to_image_keeps_the_input_size_clamped_to_the_supported_range(tmp_path):
    source = make_image(tmp_path / "in", width=320, height=200)

    result = generate(make_request(tmp_path / "out", "IMAGE_TO_IMAGE", source, prompt="in watercolor", seed=2))

    with Image.open(result.outputs[0].path) as image:
        assert (image.format, image.size) == ("PNG", (320, 256))
        assert len(image.convert("RGB").getcolors(1 << 24)) > 50


def test_image_to_image_honours_the_requested_size_and_transforms_the_input(tmp_path):
    source = make_image(tmp_path / "in", width=320, height=240)

    result = generate(
        make_request(tmp_path / "out", "IMAGE_TO_IMAGE", source, prompt="golden hour", width=320, height=240)
    )

    with Image.open(result.outputs[0].path) as image, Image.open(source) as original:
        assert image.size == (320, 240)
        assert image.convert("RGB").tobytes() != original.convert("RGB").tobytes()


# Videos


def test_text_to_video_has_the_requested_frames_duration_and_720p_size(tmp_path):
    request = make_request(tmp_path, "TEXT_TO_VIDEO", prompt="fireflies", duration=2, resolution="720p", fps=24)

    result = generate(request)

    output = result.outputs[0]
    size, frames, seconds = video_facts(output.path)
    assert (size, frames) == ((1280, 720), 48)
    assert seconds == pytest.approx(2, abs=0.05)
    assert (output.content_type, output.width, output.height) == ("video/mp4", 1280, 720)
    assert output.duration_seconds == pytest.approx(2, abs=0.05)
    assert result.metadata | {"frames": 48, "fps": 24} == result.metadata


def test_480p_video_is_854_by_480(tmp_path):
    request = make_request(tmp_path, "TEXT_TO_VIDEO", prompt="rain", duration=1, resolution="480p", fps=12)

    size, frames, _ = video_facts(generate(request).outputs[0].path)

    assert (size, frames) == ((854, 480), 12)


@pytest.mark.parametrize("job_type", ["IMAGE_TO_VIDEO", "REFERENCE_TO_VIDEO"])
def test_image_videos_animate_the_input_image(tmp_path, job_type):
    source = make_image(tmp_path / "in")
    request = make_request(tmp_path / "out", job_type, source, prompt="drift", duration=1, resolution="480p", fps=12)

    path = generate(request).outputs[0].path

    size, frames, _ = video_facts(path)
    assert (size, frames) == ((854, 480), 12)
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)
    decoded = list(reader)
    assert decoded[0] != decoded[-1], "the camera should move"


def test_image_to_video_without_an_input_image_is_a_permanent_error(tmp_path):
    with pytest.raises(ProviderError) as error:
        generate(make_request(tmp_path, "IMAGE_TO_VIDEO", prompt="x", duration=1, resolution="480p"))

    assert not error.value.transient


def test_video_progress_rises_in_steps_of_at_least_ten_percent(tmp_path):
    reported = []
    request = make_request(tmp_path, "TEXT_TO_VIDEO", prompt="waves", duration=2, resolution="480p", fps=12)

    generate(request, reported.append)

    assert reported == sorted(reported)
    assert reported[-1] == 100
    assert 5 <= len(reported) <= 12


# Speech


@needs_espeak
def test_speech_of_a_sentence_is_a_wav_longer_than_half_a_second(tmp_path):
    result = generate(make_request(tmp_path, "TEXT_TO_SPEECH", prompt="Welcome to Flixly, the local engine speaks."))

    output = result.outputs[0]
    assert output.content_type == "audio/wav"
    assert wav_seconds(output.path) > 0.5
    assert output.duration_seconds == pytest.approx(wav_seconds(output.path))


@needs_espeak
def test_faster_speech_gives_a_shorter_file(tmp_path):
    text = "The quick brown fox jumps over the lazy dog, again and again."
    normal = generate(make_request(tmp_path / "a", "TEXT_TO_SPEECH", prompt=text, speed=1.0)).outputs[0]
    fast = generate(make_request(tmp_path / "b", "TEXT_TO_SPEECH", prompt=text, speed=2.0)).outputs[0]

    assert wav_seconds(fast.path) < wav_seconds(normal.path) * 0.8


@needs_espeak
def test_a_prompt_starting_with_dashes_is_spoken_not_treated_as_an_option(tmp_path):
    result = generate(make_request(tmp_path, "TEXT_TO_SPEECH", prompt="--help me read this sentence aloud -v xx"))

    assert wav_seconds(result.outputs[0].path) > 0.5


@needs_espeak
def test_other_languages_and_voices_pick_espeak_voices(tmp_path):
    result = generate(make_request(tmp_path, "TEXT_TO_SPEECH", prompt="Guten Tag", language="de", voice="Aria"))

    assert result.metadata["voice"].startswith("de+")
    assert wav_seconds(result.outputs[0].path) > 0.3


def test_voice_names_map_to_a_stable_espeak_variant():
    known = {"en-us": "en-us", "de": "de", "fr": "fr-fr", "fr-fr": "fr-fr"}  # an alias maps to its voice

    assert espeak_voice("en", "Aria", known) == espeak_voice("en", "Aria", known)
    assert espeak_voice("en", "Aria", known).startswith("en-us+")
    assert espeak_voice("xx-unknown", "Aria", known).startswith("en-us+")
    assert espeak_voice("FR", None, known).startswith("fr-fr+")  # the alias's preferred voice (fr-be, fr-ch too)
    assert espeak_voice("de", "Aria", known).split("+")[1] in local.VOICE_VARIANTS


def test_missing_espeak_is_a_permanent_error_not_fake_audio(tmp_path, monkeypatch):
    monkeypatch.setattr(local.shutil, "which", lambda name: None)

    with pytest.raises(ProviderError, match="espeak-ng is not installed") as error:
        generate(make_request(tmp_path, "TEXT_TO_SPEECH", prompt="hello"))

    assert not error.value.transient
    assert list(tmp_path.iterdir()) == []


# Music


def test_music_lasts_exactly_the_requested_duration(tmp_path):
    result = generate(make_request(tmp_path, "TEXT_TO_MUSIC", prompt="calm piano", duration=3.5, seed=4))

    output = result.outputs[0]
    with wave.open(str(output.path), "rb") as audio:
        assert (audio.getframerate(), audio.getsampwidth()) == (44100, 2)
    assert abs(wav_seconds(output.path) - 3.5) < 0.001
    assert output.duration_seconds == pytest.approx(3.5, abs=0.001)


def test_music_is_deterministic_per_seed_and_not_silent(tmp_path):
    first = generate(make_request(tmp_path / "a", "TEXT_TO_MUSIC", prompt="happy", duration=2, seed=1)).outputs[0]
    again = generate(make_request(tmp_path / "b", "TEXT_TO_MUSIC", prompt="happy", duration=2, seed=1)).outputs[0]
    other = generate(make_request(tmp_path / "c", "TEXT_TO_MUSIC", prompt="happy", duration=2, seed=2)).outputs[0]

    assert first.path.read_bytes() == again.path.read_bytes()
    assert first.path.read_bytes() != other.path.read_bytes()
    with wave.open(str(first.path), "rb") as audio:
        assert len(set(audio.readframes(audio.getnframes()))) > 100


def test_a_minute_of_music_renders_quickly(tmp_path):
    started = time.perf_counter()

    generate(make_request(tmp_path, "TEXT_TO_MUSIC", prompt="epic adventure", duration=60))

    assert time.perf_counter() - started < 3


# Chat


def test_chat_replies_to_the_last_user_message_with_usage(tmp_path):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me about volcanoes"},
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Why do glaciers move?"},
    ]

    result = generate(make_request(tmp_path, "CHAT", messages=messages))

    assert result.outputs == []
    assert result.text.startswith("Local engine reply:")
    assert "glaciers" in result.text
    assert "volcanoes" not in result.text
    assert result.usage == {"promptTokens": 2 + 4 + 1 + 4, "completionTokens": len(result.text.split())}


@pytest.mark.parametrize(
    ("stand_in", "says"),
    [
        ("", "Pick a hosted chat model for a real answer."),
        ("fallback", "This server has no upstream set up for gpt-5-nano, so Flixly's built-in offline engine"),
        ("test", "Test keys always run on Flixly's built-in offline engine"),
    ],
)
def test_a_chat_reply_says_why_the_local_engine_answered(tmp_path, stand_in, says):
    request = replace(make_request(tmp_path, "CHAT", prompt="Hi there"), model="gpt-5-nano", stand_in=stand_in)
    assert says in generate(request).text


def test_chat_reply_is_capped_at_max_tokens(tmp_path):
    messages = [{"role": "user", "content": "Explain the theory of relativity in detail"}]

    result = generate(make_request(tmp_path, "CHAT", messages=messages, maxTokens=5))

    assert len(result.text.split()) == 5
    assert result.usage["completionTokens"] == 5


def test_chat_passes_its_reply_on_a_word_at_a_time_when_asked(tmp_path):
    pieces: list[str] = []
    request = make_request(tmp_path, "CHAT", messages=[{"role": "user", "content": "Why is the sky blue?"}])

    result = generate(replace(request, on_text=pieces.append))

    assert len(pieces) == len(result.text.split()) > 3
    assert "".join(pieces) == result.text


# Errors and the provider interface


def test_unknown_job_type_is_a_permanent_provider_error(tmp_path):
    with pytest.raises(ProviderError, match="cannot run TEXT_TO_HOLOGRAM") as error:
        generate(make_request(tmp_path, "TEXT_TO_HOLOGRAM", prompt="x"))

    assert not error.value.transient


def test_provider_submits_polls_and_hands_over_the_result_once(tmp_path):
    provider = LocalProvider()
    request = make_request(tmp_path, "TEXT_TO_IMAGE", prompt="a boat", width=64, height=64)

    upstream_id = provider.submit(request)

    assert upstream_id == "local-job-1"
    assert provider.poll(request, upstream_id).status == "succeeded"
    assert provider.fetch_outputs(request, upstream_id).outputs[0].width == 64
    with pytest.raises(ProviderError):
        provider.fetch_outputs(request, upstream_id)


def test_provider_run_reports_progress_up_to_100(tmp_path):
    reported = []
    request = make_request(tmp_path, "TEXT_TO_IMAGE", prompt="a boat", width=64, height=64)

    result = LocalProvider().run(request, reported.append, deadline=time.monotonic() + 60)

    assert result.outputs[0].path.exists()
    assert reported[-1] == 100


def test_provider_run_stops_once_the_deadline_has_passed(tmp_path):
    request = make_request(tmp_path, "TEXT_TO_VIDEO", prompt="late", duration=1, resolution="480p")

    with pytest.raises(ProviderError, match="deadline"):
        LocalProvider().run(request, lambda percent: None, deadline=time.monotonic() - 1)
