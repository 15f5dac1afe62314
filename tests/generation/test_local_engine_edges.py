"""The local engine's edges a trial of every catalog model found: same seed, same bytes; every language and
voice the catalog offers; inputs of any bit depth and size; nothing accepted that cannot be made."""

import hashlib
import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from PIL import Image

from flixly_site.errors import ValidationFailed
from generation.providers import local
from generation.providers.base import GenerationRequest
from generation.validation import require_image

ROOT = Path(__file__).resolve().parents[2]


def request(workdir: Path, job_type: str, image_path: Path | None = None, **params) -> GenerationRequest:
    workdir.mkdir(parents=True, exist_ok=True)
    return GenerationRequest("job", job_type, "m", "m", params, workdir, image_path=image_path)


def test_text_to_video_is_byte_identical_for_the_same_seed(tmp_path):
    """libx264 with its default threads gives different bytes (and decoded frames) run to run; -threads 1 does not."""
    digests = set()
    for run in range(6):
        params = {"prompt": "a blue ocean at sunset", "seed": 42, "resolution": "480p", "duration": 4, "fps": 24}
        out = local.generate(request(tmp_path / str(run), "TEXT_TO_VIDEO", **params)).outputs[0].path
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == 1


@pytest.mark.espeak
def test_chinese_speech_works_for_the_catalogs_zh_language(tmp_path):
    """Six catalog speech models allow language "zh"; espeak-ng rejects "zh+<variant>" (an alias), so every such
    job fails after being charged."""
    result = local.generate(request(tmp_path, "TEXT_TO_SPEECH", prompt="你好世界", language="zh", voice="Rachel"))
    assert result.outputs[0].duration_seconds > 0.5


@pytest.mark.espeak
@pytest.mark.parametrize("voice", ["m1", "m2", "m3", "f1", "f2", "f3"])
def test_local_speech_voices_are_the_espeak_variants_they_are_named_after(voice):
    """local-speech offers voices m1..m3 and f1..f3 (espeak's own variant names) but hashes them instead:
    f1 (the default) speaks as m7, m1 as f2, and m3/f2 give the same voice."""
    known = local.espeak_languages(local._espeak())
    assert local.espeak_voice("en", voice, known) == f"en-us+{voice}"


def gradient_png(mode: str) -> Path:
    image = Image.new(mode, (256, 64))
    top = 65535 if mode == "I;16" else 255
    image.putdata([x * top // 255 for _y in range(64) for x in range(256)])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_16_bit_png_input_keeps_its_tones(tmp_path):
    """A 16-bit grey gradient is clamped to white by convert("RGB"): image-to-video of it is a white frame."""
    paths = {}
    for mode in ("L", "I;16"):
        paths[mode] = tmp_path / f"{mode.replace(';', '')}.png"
        paths[mode].write_bytes(gradient_png(mode))
    eight = local._open_input(request(tmp_path / "a", "IMAGE_TO_VIDEO", image_path=paths["L"]))[0].convert("L")
    sixteen = local._open_input(request(tmp_path / "b", "IMAGE_TO_VIDEO", image_path=paths["I;16"]))[0].convert("L")
    middle = [(eight.getpixel((x, 32)), sixteen.getpixel((x, 32))) for x in range(0, 256, 32)]
    assert all(abs(a - b) <= 2 for a, b in middle), middle


def test_a_truncated_jpeg_is_refused_at_submit_not_charged_and_failed_in_the_worker():
    image = Image.new("RGB", (640, 480), (200, 40, 40))
    for x in range(0, 640, 16):
        image.paste((x % 256, 90, 255 - x % 256), (x, 0, x + 8, 480))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    truncated = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    with pytest.raises(ValidationFailed):
        require_image(truncated, "image")


@pytest.mark.django_db
@pytest.mark.parametrize("prompt", ["\u200b", "...", "\u0301\u0301"])
def test_speech_with_nothing_to_say_is_a_422_not_a_charged_silence(prompt):
    from generation.validation import validate_generate

    with pytest.raises(ValidationFailed):
        validate_generate({"model": "local-speech", "type": "TEXT_TO_SPEECH", "prompt": prompt})


def big_flat_png(side: int) -> bytes:
    """A side x side RGBA PNG of one colour: tens of megapixels in a few hundred kilobytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x55" * (side * 4)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize("job_type", ["IMAGE_TO_IMAGE", "IMAGE_TO_VIDEO"])
def test_an_accepted_input_image_does_not_take_the_worker_past_500_mb(tmp_path, job_type):
    # A 7000x7000 RGBA PNG (49 MP, under the 50 MP limit, ~200 KB on the wire) took the worker to ~650 MB
    # (586 MB here); decoding it whole takes about 200 MB, which a PNG cannot avoid.
    png = big_flat_png(7000)
    require_image(png, "image")  # the API accepts it
    (tmp_path / "in.png").write_bytes(png)
    params = {"prompt": "x", "width": 512, "height": 512, "duration": 1, "resolution": "480p", "fps": 24}
    script = textwrap.dedent(
        f"""
        import resource, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from generation.providers import local
        from generation.providers.base import GenerationRequest
        work = Path({str(tmp_path)!r})
        local.generate(GenerationRequest("j", {job_type!r}, "m", "m", {params!r}, work, image_path=work / "in.png"))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    peak_mb = int(done.stdout.split()[-1])
    assert peak_mb < 500, f"peak RSS {peak_mb} MB"


def test_an_input_turned_by_its_exif_orientation_keeps_its_upright_size_and_colours(tmp_path):
    image = Image.new("RGB", (600, 300), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 300, 300))  # left half red: upright (turned 90° clockwise) it is on top
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    path = tmp_path / "phone.jpg"
    image.save(path, "JPEG", exif=exif, quality=95)
    upright, size = local._open_input(request(tmp_path / "w", "IMAGE_TO_IMAGE", image_path=path))
    assert size == (300, 600) and upright.size == (300, 600)
    top, bottom = upright.getpixel((150, 100)), upright.getpixel((150, 500))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]


@pytest.mark.espeak
def test_speech_longer_than_the_engine_makes_fails_plainly_instead_of_storing_hours_of_audio(tmp_path, monkeypatch):
    # 10,000 characters of Japanese at speed 0.5 came out as 2 h 45 min of WAV (437 MB) for 30 credits.
    from generation.providers.base import ProviderError

    monkeypatch.setattr(local, "MAX_SPEECH_SECONDS", 2)
    with pytest.raises(ProviderError, match=r"over the local engine's limit of 0:00:02") as error:
        local.generate(request(tmp_path, "TEXT_TO_SPEECH", prompt="one two three four five six seven eight nine ten"))
    assert error.value.transient is False
    assert not list(tmp_path.glob("*.wav"))  # not kept
