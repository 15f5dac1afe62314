"""The built-in "local engine": real, deterministic outputs made on the worker itself, with no upstream account.

It has no model weights. Images and videos are procedural art derived from the prompt and seed, speech comes from
espeak-ng and music from a small synthesizer, so a fresh install can run and demo every job type offline. The same
request always gives the same bytes, which keeps retries, caching and tests reproducible.
"""

import colorsys
import functools
import hashlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import imageio_ffmpeg
from PIL import ExifTags, Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from .base import GenerationRequest, GenerationResult, OutputFile, PollResult, ProgressCallback, Provider, ProviderError

Color = tuple[int, int, int]
Size = tuple[int, int]

RESOLUTIONS: dict[str, Size] = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
SAMPLE_RATE = 44100
ESPEAK_TIMEOUT = 600  # seconds; 10,000 characters take well under a second, so this only stops a wedged process

# Prompt words that name a colour win over hashed colours, so "a red fox" actually comes out red.
NAMED_COLORS: dict[str, Color] = {
    "red": (214, 40, 57),
    "orange": (245, 130, 32),
    "yellow": (250, 210, 60),
    "gold": (212, 175, 55),
    "green": (46, 160, 67),
    "forest": (34, 100, 52),
    "teal": (0, 128, 128),
    "blue": (40, 90, 220),
    "ocean": (16, 90, 150),
    "sky": (120, 180, 240),
    "purple": (128, 60, 180),
    "violet": (143, 0, 255),
    "pink": (240, 120, 170),
    "brown": (120, 72, 40),
    "black": (15, 15, 20),
    "night": (18, 22, 58),
    "white": (240, 240, 245),
    "snow": (235, 242, 250),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "sunset": (250, 110, 60),
    "fire": (235, 80, 20),
    "neon": (57, 255, 20),
}
_WORD = re.compile(r"[^\W_]+")


# ---------------------------------------------------------------------------------------------------------------
# Seeds, randomness and palettes
# ---------------------------------------------------------------------------------------------------------------


def _digest(*parts: object) -> int:
    """A stable 64-bit number; hash() is salted per process and would make outputs differ between workers."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def resolve_seed(params: dict[str, Any]) -> int:
    """The seed the request asked for, else one derived from the prompt so a prompt always renders the same way."""
    seed = params.get("seed")
    if seed is not None:
        return int(seed)
    return int.from_bytes(hashlib.sha256((params.get("prompt") or "").encode()).digest()[:4], "big") & 0x7FFFFFFF


def _rng(seed: int, prompt: str, purpose: str) -> random.Random:
    """A generator per purpose, so adding a draw to one part of a scene does not reshuffle every other part."""
    return random.Random(_digest(seed, prompt, purpose))


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _word_color(word: str) -> Color:
    """Vivid but never muddy: saturation and value stay in the upper half of their range."""
    h = _digest("colour", word)
    hue, sat, val = (h & 0xFFFF) / 0x10000, 0.45 + (h >> 16 & 0xFF) / 510, 0.55 + (h >> 24 & 0xFF) / 570
    return tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hue, sat, val))  # type: ignore[return-value]


def palette(prompt: str, size: int = 5) -> list[Color]:
    """The prompt's colours: named colours first, then one hue per distinct word, repeated to fill `size`."""
    words = list(dict.fromkeys(_words(prompt))) or ["flixly"]
    colors = [NAMED_COLORS[w] for w in words if w in NAMED_COLORS]
    colors += [_word_color(w) for w in words if w not in NAMED_COLORS]
    return [colors[i % len(colors)] for i in range(size)]


def _shade(color: Color, factor: float) -> Color:
    return tuple(max(0, min(255, round(c * factor))) for c in color)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------------------
# Procedural drawing shared by images and videos
# ---------------------------------------------------------------------------------------------------------------


def _gradient(size: Size, rng: random.Random, colors: list[Color]) -> Image.Image:
    """Upscaling a 3x3 grid of palette colours gives a smooth multi-stop gradient for almost no work."""
    tiny = Image.new("RGB", (3, 3))
    tiny.putdata([_shade(rng.choice(colors), rng.uniform(0.35, 1.1)) for _ in range(9)])
    return tiny.resize(size, Image.Resampling.BICUBIC)


def _shape(draw: ImageDraw.ImageDraw, center: tuple[float, float], r: float, rng: random.Random, fill: Any) -> None:
    """An ellipse, an irregular blob or a ring; `fill` is a colour or, for masks, an L-mode level."""
    cx, cy, kind = *center, rng.random()
    if kind < 0.45:
        draw.ellipse((cx - r, cy - r * rng.uniform(0.6, 1.0), cx + r, cy + r), fill=fill)
    elif kind < 0.8:
        sides = rng.randint(5, 11)
        points = [
            (cx + r * rng.uniform(0.7, 1.0) * math.cos(a), cy + r * rng.uniform(0.7, 1.0) * math.sin(a))
            for a in (2 * math.pi * i / sides for i in range(sides))
        ]
        draw.polygon(points, fill=fill)
    else:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=max(2, round(r / 5)))


def _random_shape(draw: ImageDraw.ImageDraw, size: Size, rng: random.Random, fill: Any) -> None:
    w, h = size
    center = (rng.uniform(0, w), rng.uniform(0, h))
    _shape(draw, center, rng.uniform(0.04, 0.28) * min(w, h), rng, fill)


def _soft_art(size: Size, rng: random.Random, colors: list[Color], count: int) -> Image.Image:
    """Gradient plus blurry blobs, drawn at a quarter of the size: upscaling does the blurring for free."""
    small = (max(8, size[0] // 4), max(8, size[1] // 4))
    base = _gradient(small, rng, colors).convert("RGBA")
    layer = Image.new("RGBA", small, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(count):
        _random_shape(draw, small, rng, (*rng.choice(colors), rng.randint(90, 200)))
    art = Image.alpha_composite(base, layer).convert("RGB")
    art = art.filter(ImageFilter.GaussianBlur(min(small) / 30))
    return art.resize(size, Image.Resampling.BICUBIC)


def _sharp_details(image: Image.Image, rng: random.Random, colors: list[Color], steps: int) -> Image.Image:
    """Crisp shapes and sparkles on top of the soft art; more steps buy more detail, as with a real sampler."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(3 + steps // 4):
        _random_shape(draw, image.size, rng, (*_shade(rng.choice(colors), rng.uniform(0.8, 1.3)), rng.randint(60, 170)))
    w, h = image.size
    for _ in range(steps * 6):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, max(2, min(w, h) / 250))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, rng.randint(40, 160)))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _pixelate(image: Image.Image) -> Image.Image:
    small = image.resize((max(1, image.width // 12), max(1, image.height // 12)), Image.Resampling.BOX)
    return small.resize(image.size, Image.Resampling.NEAREST)


def _sepia(image: Image.Image) -> Image.Image:
    return ImageOps.colorize(ImageOps.grayscale(image), "#2b1a0e", "#f3e2c0")


STYLE_FILTERS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "photographic": lambda im: ImageEnhance.Contrast(im).enhance(1.15),
    "cinematic": lambda im: ImageEnhance.Contrast(ImageEnhance.Color(im).enhance(0.8)).enhance(1.25),
    "anime": lambda im: ImageOps.posterize(im.filter(ImageFilter.SMOOTH_MORE), 3),
    "comic": lambda im: ImageOps.posterize(im.filter(ImageFilter.EDGE_ENHANCE_MORE), 3),
    "digital-art": lambda im: ImageEnhance.Color(im).enhance(1.4).filter(ImageFilter.SHARPEN),
    "neon": lambda im: ImageEnhance.Contrast(ImageEnhance.Color(im).enhance(1.8)).enhance(1.3),
    "cyberpunk": lambda im: ImageEnhance.Contrast(ImageEnhance.Color(im).enhance(1.8)).enhance(1.3),
    "pixel": _pixelate,
    "sketch": lambda im: ImageOps.grayscale(im).filter(ImageFilter.CONTOUR).convert("RGB"),
    "painting": lambda im: ImageOps.posterize(im.filter(ImageFilter.GaussianBlur(2)), 5),
    "watercolor": lambda im: ImageEnhance.Brightness(im.filter(ImageFilter.GaussianBlur(3))).enhance(1.1),
    "noir": lambda im: ImageEnhance.Contrast(ImageOps.grayscale(im)).enhance(1.4).convert("RGB"),
    "black-and-white": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "vintage": _sepia,
    "sepia": _sepia,
}


def apply_style(image: Image.Image, style: str | None) -> Image.Image:
    """Style names are free text upstream, so "Oil Painting" or "pixel_art" match by keyword; unknown ones pass."""
    key = re.sub(r"[\s_]+", "-", (style or "").strip().lower())
    for name, apply in STYLE_FILTERS.items():
        if key and (key == name or name in key):
            return apply(image)
    return image


def _scene_rng(request: GenerationRequest, seed: int, purpose: str) -> tuple[random.Random, list[Color]]:
    prompt = request.params.get("prompt") or ""
    return _rng(seed, prompt, purpose), palette(prompt)


def _even(value: int) -> int:
    """H.264 in yuv420p and many decoders need even sides; images keep to the same rule for consistency."""
    return max(2, value - value % 2)


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------


def _image_output(path: Path) -> OutputFile:
    with Image.open(path) as image:
        width, height = image.size
    return OutputFile(path, "image/png", os.path.getsize(path), width=width, height=height)


def _save_png(image: Image.Image, request: GenerationRequest) -> OutputFile:
    path = request.workdir / "image.png"
    image.save(path, format="PNG", optimize=False)
    return _image_output(path)


def render_image(request: GenerationRequest, seed: int, size: Size) -> Image.Image:
    """The still scene for a prompt; videos reuse it as their background."""
    rng, colors = _scene_rng(request, seed, "image")
    steps = int(request.params.get("steps") or 20)
    art = _soft_art(size, rng, colors, count=5 + rng.randint(0, 5))
    art = _sharp_details(art, rng, colors, steps)
    return apply_style(art, request.params.get("style"))


def _text_to_image(request: GenerationRequest, seed: int, progress: ProgressCallback) -> GenerationResult:
    size = (int(request.params.get("width") or 1024), int(request.params.get("height") or 1024))
    progress(10)
    image = render_image(request, seed, size)
    progress(80)
    return GenerationResult(outputs=[_save_png(image, request)])


MAX_INPUT_SIDE = 2048  # no output is wider or taller: a bigger input is shrunk before anything else is done
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ROTATED_A_QUARTER = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _open_input(request: GenerationRequest) -> tuple[Image.Image, Size]:
    """The input image upright and in 8-bit RGB, no bigger than an output, and its own upright size.

    Shrunk first, in place (draft decoding for a JPEG): a 49-megapixel upload otherwise took the worker
    past 650 MB in the copies that turning and converting it made."""
    if request.image_path is None:
        raise ProviderError(f"{request.type} needs an input image.", transient=False)
    with Image.open(request.image_path) as image:
        width, height = image.size
        upright = (
            (height, width) if image.getexif().get(ExifTags.Base.Orientation) in ROTATED_A_QUARTER else (width, height)
        )
        image.thumbnail((MAX_INPUT_SIDE, MAX_INPUT_SIDE), Image.Resampling.LANCZOS, reducing_gap=1.0)
        # Phones store rotation in EXIF; honour it so the output is not sideways.
        return _eight_bit_rgb(ImageOps.exif_transpose(image)), upright


def _eight_bit_rgb(image: Image.Image) -> Image.Image:
    if image.mode in SIXTEEN_BIT_MODES:  # convert("RGB") would clip every tone above 255 to white
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    return image.convert("RGB")


def _input_size(request: GenerationRequest, upright: Size) -> Size:
    """The requested size, else the input's own size kept within what the image models accept."""
    width = request.params.get("width") or _even(min(MAX_INPUT_SIDE, max(256, upright[0])))
    height = request.params.get("height") or _even(min(MAX_INPUT_SIDE, max(256, upright[1])))
    return int(width), int(height)


def restyle(image: Image.Image, request: GenerationRequest, seed: int) -> Image.Image:
    """Keep the input's structure but recolour it in the prompt's palette and overlay the prompt's pattern."""
    rng, colors = _scene_rng(request, seed, "restyle")
    steps = int(request.params.get("steps") or 20)
    dark, light = _shade(min(colors, key=sum), 0.35), _shade(max(colors, key=sum), 1.15)
    toned = ImageOps.colorize(ImageOps.grayscale(image), dark, light, mid=colors[0])
    out = Image.blend(image, toned, 0.3 + 0.3 * steps / 50)
    pattern = _sharp_details(_soft_art(image.size, rng, colors, 6), rng, colors, steps)
    out = ImageOps.posterize(Image.blend(out, pattern, 0.22), rng.choice((4, 5, 6)))
    return apply_style(out, request.params.get("style"))


def _image_to_image(request: GenerationRequest, seed: int, progress: ProgressCallback) -> GenerationResult:
    source, upright = _open_input(request)
    size = _input_size(request, upright)
    progress(10)
    image = restyle(ImageOps.fit(source, size, Image.Resampling.LANCZOS), request, seed)
    progress(80)
    return GenerationResult(outputs=[_save_png(image, request)])


# ---------------------------------------------------------------------------------------------------------------
# Videos
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sprite:
    """A soft shape on a Lissajous path; whole cycles per clip keep it slow and let the clip loop seamlessly."""

    mask: Image.Image
    color: Color
    center: tuple[float, float]
    amplitude: tuple[float, float]
    cycles: tuple[int, int]
    phase: tuple[float, float]

    def box(self, t: float) -> tuple[int, int, int, int]:
        x = self.center[0] + self.amplitude[0] * math.sin(2 * math.pi * (self.cycles[0] * t + self.phase[0]))
        y = self.center[1] + self.amplitude[1] * math.sin(2 * math.pi * (self.cycles[1] * t + self.phase[1]))
        left, top = round(x - self.mask.width / 2), round(y - self.mask.height / 2)
        return left, top, left + self.mask.width, top + self.mask.height


def _sprite_mask(side: int, rng: random.Random) -> Image.Image:
    """A shape centred with room to spare, so the blurred edge fades out inside the mask instead of being cut."""
    mask = Image.new("L", (side, side), 0)
    _shape(ImageDraw.Draw(mask), (side / 2, side / 2), side * 0.32, rng, 255)
    return mask.filter(ImageFilter.GaussianBlur(side / 14))


def _sprites(size: Size, rng: random.Random, colors: list[Color], count: int) -> list[_Sprite]:
    """Sizes and paths scale with the frame, so 480p and 1080p renders of a prompt show the same scene."""
    w, h = size
    sprites = []
    for _ in range(count):
        side = round(rng.uniform(0.25, 0.55) * h)
        sprites.append(
            _Sprite(
                mask=_sprite_mask(side, rng),
                color=_shade(rng.choice(colors), rng.uniform(0.9, 1.4)),
                center=(rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h),
                amplitude=(rng.uniform(0.05, 0.3) * w, rng.uniform(0.05, 0.3) * h),
                cycles=(rng.choice((-1, 1)), rng.choice((-1, 1, 2))),
                phase=(rng.random(), rng.random()),
            )
        )
    return sprites


def _draw_sprites(frame: Image.Image, sprites: list[_Sprite], t: float) -> Image.Image:
    for sprite in sprites:
        frame.paste(sprite.color, sprite.box(t), sprite.mask)
    return frame


def _drift_box(size: Size, margin: int, t: float, phase: float) -> tuple[int, int, int, int]:
    """Where the frame sits on the oversized background: a slow ellipse, so the gradient seems to breathe."""
    x = round(margin * (1 + math.sin(2 * math.pi * (t + phase))))
    y = round(margin * (1 + math.cos(2 * math.pi * (t + phase))))
    return x, y, x + size[0], y + size[1]


def _scene_frames(request: GenerationRequest, seed: int, size: Size, count: int) -> Iterator[Image.Image]:
    """The background is rendered once with a margin and only cropped per frame, which keeps 1080p fast."""
    rng, colors = _scene_rng(request, seed, "video")
    margin = size[1] // 8
    background = render_image(request, seed, (size[0] + 2 * margin, size[1] + 2 * margin))
    sprites = _sprites(size, rng, colors, count=3 + rng.randint(0, 4))
    phase = rng.random()
    return (
        _draw_sprites(background.crop(_drift_box(size, margin, i / count, phase)), sprites, i / count)
        for i in range(count)
    )


@dataclass(frozen=True)
class _Camera:
    """A Ken Burns move: eased so it starts and ends gently, clamped so it never leaves the picture."""

    zoom: tuple[float, float]
    start: tuple[float, float]  # centre of view as fractions of the width and height
    end: tuple[float, float]

    def box(self, size: Size, t: float) -> tuple[float, float, float, float]:
        ease = (1 - math.cos(math.pi * t)) / 2
        z = self.zoom[0] + (self.zoom[1] - self.zoom[0]) * ease
        bw, bh = size[0] / z, size[1] / z
        cx = (self.start[0] + (self.end[0] - self.start[0]) * ease) * size[0]
        cy = (self.start[1] + (self.end[1] - self.start[1]) * ease) * size[1]
        left = min(max(0.0, cx - bw / 2), size[0] - bw)
        top = min(max(0.0, cy - bh / 2), size[1] - bh)
        return left, top, left + bw, top + bh


def _ken_burns_frames(request: GenerationRequest, seed: int, size: Size, count: int) -> Iterator[Image.Image]:
    """Pan and zoom over the input image; REFERENCE_TO_VIDEO adds a drifting prompt-coloured wash on top."""
    rng = _scene_rng(request, seed, "camera")[0]
    # Opened here, not lazily in the generator, so a bad input fails before ffmpeg is started.
    source = ImageOps.fit(_open_input(request)[0], size, Image.Resampling.LANCZOS)
    source = apply_style(source, request.params.get("style"))
    zoom = (1.0, rng.uniform(1.12, 1.25))[:: rng.choice((1, -1))]
    camera = _Camera(zoom, *((rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)) for _ in range(2)))
    overlay = _overlay(request, seed, size) if request.type == "REFERENCE_TO_VIDEO" else None

    def frame(i: int) -> Image.Image:
        moved = source.resize(size, Image.Resampling.BILINEAR, box=camera.box(size, i / max(1, count - 1)))
        return _apply_overlay(moved, overlay, i / count)

    return map(frame, range(count))


@dataclass(frozen=True)
class _Overlay:
    background: Image.Image
    margin: int
    sprites: list[_Sprite]


def _overlay(request: GenerationRequest, seed: int, size: Size) -> _Overlay:
    rng, colors = _scene_rng(request, seed, "reference")
    margin = size[1] // 8
    background = _soft_art((size[0] + 2 * margin, size[1] + 2 * margin), rng, colors, 6)
    return _Overlay(background, margin, _sprites(size, rng, colors, count=2))


def _apply_overlay(frame: Image.Image, overlay: _Overlay | None, t: float) -> Image.Image:
    if overlay is None:
        return frame
    wash = overlay.background.crop(_drift_box(frame.size, overlay.margin, t, 0.0))
    return _draw_sprites(Image.blend(frame, wash, 0.2), overlay.sprites, t)


def _ffmpeg_command(size: Size, fps: int, out: Path) -> list[str]:
    return [
        imageio_ffmpeg.get_ffmpeg_exe(),
        *("-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24"),
        *("-s", f"{size[0]}x{size[1]}", "-r", str(fps), "-i", "-"),
        *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-movflags", "+faststart"),
        # One encoder thread: libx264's threads split the work differently from run to run, and the same seed
        # must give the same bytes. It also takes about 70 MB less at 1080p.
        *("-threads", "1", str(out)),
    ]


def _feed(stdin: IO[bytes], frames: Iterable[Image.Image], count: int, progress: ProgressCallback) -> None:
    """Write frames as they are drawn; progress moves in 10% steps so callers are not flooded with updates."""
    next_mark = 10
    for i, frame in enumerate(frames, start=1):
        stdin.write(frame.tobytes())
        done = i * 100 // count
        if done >= next_mark:
            progress(5 + done * 85 // 100)
            next_mark = done - done % 10 + 10


def _stop(process: subprocess.Popen) -> None:
    """Called on every exit path: after an error or a missed deadline, ffmpeg must not be left running."""
    if process.poll() is None:
        process.kill()
        process.wait()
    with suppress(OSError):  # flushing into a dead pipe raises; the pipe is closed either way
        process.stdin.close()  # type: ignore[union-attr]


def encode_video(
    frames: Iterable[Image.Image], count: int, size: Size, fps: int, out: Path, progress: ProgressCallback
) -> None:
    """Pipe raw RGB frames into ffmpeg. stderr goes to a file, not a pipe, so a chatty ffmpeg can never deadlock us."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(_ffmpeg_command(size, fps, out), stdin=subprocess.PIPE, stderr=errors)
        try:
            with suppress(BrokenPipeError):  # ffmpeg died early; its exit code and stderr say why
                _feed(process.stdin, frames, count, progress)  # type: ignore[arg-type]
                process.stdin.close()  # type: ignore[union-attr]
            code = process.wait()
        finally:
            _stop(process)
        if code != 0:
            errors.seek(0)
            tail = errors.read()[-1500:].decode(errors="replace").strip()
            raise ProviderError(f"ffmpeg failed with exit code {code}: {tail}", transient=False)


def _video_output(path: Path) -> OutputFile:
    """Size and duration come from the file's own header, so the job reports what was really made."""
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
    finally:
        reader.close()
    width, height = meta["size"]
    return OutputFile(
        path, "video/mp4", os.path.getsize(path), width=width, height=height, duration_seconds=meta["duration"]
    )


def _video(request: GenerationRequest, seed: int, progress: ProgressCallback) -> GenerationResult:
    params = request.params
    size = RESOLUTIONS.get(params.get("resolution") or "720p", RESOLUTIONS["720p"])
    fps = int(params.get("fps") or 24)
    count = max(1, round(float(params.get("duration") or 5) * fps))
    make_frames = _scene_frames if request.type == "TEXT_TO_VIDEO" else _ken_burns_frames
    out = request.workdir / "video.mp4"
    progress(5)
    encode_video(make_frames(request, seed, size, count), count, size, fps, out, progress)
    return GenerationResult(outputs=[_video_output(out)], metadata={"fps": fps, "frames": count})


# ---------------------------------------------------------------------------------------------------------------
# Speech
# ---------------------------------------------------------------------------------------------------------------

MAX_SPEECH_SECONDS = 1800  # half an hour: 10,000 characters of English even at speed 0.5 take about 24 minutes
VOICE_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 5))


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise ProviderError("espeak-ng is not installed on this worker", transient=False)
    return path


@functools.cache
def espeak_languages(executable: str) -> dict[str, str]:
    """Each language code espeak-ng knows, and each alias listed under "Other Languages" ("zh" for "cmn"),
    mapped to the voice's own code: an alias names a voice alone ("-v zh"), never with a variant ("zh+f1")."""
    listing = subprocess.run([executable, "--voices"], capture_output=True, text=True, timeout=30, check=False)
    codes: dict[str, str] = {}
    aliases: dict[str, tuple[int, str]] = {}  # alias -> (priority, code): the lowest priority is espeak's pick
    for line in listing.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 1:
            code = fields[1].lower()
            codes[code] = code
            for alias, priority in re.findall(r"\(([\w-]+) (\d+)\)", line):
                aliases[alias.lower()] = min(aliases.get(alias.lower(), (99, code)), (int(priority), code))
    return {**{alias: code for alias, (_, code) in aliases.items()}, **codes}


def espeak_voice(language: str | None, voice: str | None, known: dict[str, str]) -> str:
    """espeak's own variant names (m1-m7, f1-f4: local-speech's voices) are used as they are; the other
    catalogue voices are free text, and hashing them picks a stable variant for each name."""
    lang = (language or "en").strip().lower().replace("_", "-")
    lang = "en-us" if lang in ("en", "") or lang not in known else known[lang]
    named = (voice or "").strip().lower()
    variant = (
        named if named in VOICE_VARIANTS else VOICE_VARIANTS[_digest("voice", voice or "default") % len(VOICE_VARIANTS)]
    )
    return f"{lang}+{variant}"


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def _within_speech_limit(output: OutputFile) -> OutputFile:
    """Text espeak reads slowly (symbols, some scripts, speed 0.5) made hours of WAV from 10,000 characters."""
    if output.duration_seconds > MAX_SPEECH_SECONDS:
        output.path.unlink(missing_ok=True)
        raise ProviderError(
            f"The speech would last {_clock(output.duration_seconds)}, over the local engine's limit of "
            f"{_clock(MAX_SPEECH_SECONDS)}: send shorter text or a faster speed.",
            transient=False,
        )
    return output


def _audio_output(path: Path) -> OutputFile:
    with wave.open(str(path), "rb") as audio:
        duration = audio.getnframes() / audio.getframerate()
    return OutputFile(path, "audio/wav", os.path.getsize(path), duration_seconds=duration)


def _run_espeak(command: list[str], text: str, out: Path) -> None:
    """The text goes in on stdin, never argv: a prompt such as "--help" must be spoken, not parsed as an option."""
    try:
        done = subprocess.run(command, input=text.encode(), capture_output=True, timeout=ESPEAK_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ProviderError("espeak-ng timed out.", transient=True) from exc
    if done.returncode != 0 or not out.exists():
        tail = done.stderr[-1000:].decode(errors="replace").strip()
        raise ProviderError(f"espeak-ng failed with exit code {done.returncode}: {tail}", transient=False)


def _speech(request: GenerationRequest, seed: int, progress: ProgressCallback) -> GenerationResult:
    executable = _espeak()
    params = request.params
    voice = espeak_voice(params.get("language"), params.get("voice"), espeak_languages(executable))
    wpm = round(160 * float(params.get("speed") or 1.0))
    out = request.workdir / "speech.wav"
    progress(10)
    # "-b 1" reads the text as UTF-8, whatever the worker's locale is.
    _run_espeak([executable, "-v", voice, "-s", str(wpm), "-b", "1", "-w", str(out)], params.get("prompt") or "", out)
    output = _within_speech_limit(_audio_output(out))
    return GenerationResult(outputs=[output], metadata={"voice": voice, "wordsPerMinute": wpm})


# ---------------------------------------------------------------------------------------------------------------
# Music
# ---------------------------------------------------------------------------------------------------------------

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
}
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 4), (0, 3, 0, 4), (1, 4, 0, 0), (0, 5, 1, 4))
RHYTHMS = ((1, 1, 1, 1), (2, 1, 1), (1.5, 0.5, 2), (0.5, 0.5, 1, 2), (1, 0.5, 0.5, 1, 1), (3, 1), (0.5,) * 8)
DARK_WORDS = frozenset(
    ["sad", "dark", "melancholy", "moody", "night", "rain", "lonely", "minor", "somber", "epic", "mysterious", "horror"]
)
BRIGHT_WORDS = frozenset(
    ["happy", "bright", "upbeat", "sunny", "joyful", "cheerful", "summer", "pop", "dance", "major", "fun"]
)
SLOW_WORDS = frozenset(
    ["slow", "calm", "ambient", "chill", "relaxing", "lofi", "sleep", "gentle", "peaceful", "ballad"]
)
FAST_WORDS = frozenset(
    ["fast", "energetic", "dance", "upbeat", "rock", "techno", "edm", "action", "intense", "running"]
)
TABLE_SIZE = 4096


def _table(harmonics: tuple[float, ...]) -> list[float]:
    """One cycle of a waveform: looking samples up is much cheaper than summing sines per sample."""
    step = 2 * math.pi / TABLE_SIZE
    return [sum(a * math.sin((n + 1) * k * step) for n, a in enumerate(harmonics)) for k in range(TABLE_SIZE)]


TIMBRES = {"pad": _table((1.0, 0.35, 0.12)), "lead": _table((1.0, 0.0, 0.11, 0.0, 0.04)), "bass": _table((1.0, 0.5))}


@dataclass(frozen=True)
class _Song:
    root: int  # MIDI note of the key's tonic, bass octave
    scale: tuple[int, ...]
    beat: int  # samples per beat: an integer so every note starts on an exact sample
    progression: tuple[int, ...]

    def pitch(self, degree: int, octave: int) -> int:
        """MIDI note for a scale degree; degrees past the scale wrap into the next octave."""
        return self.root + 12 * (octave + degree // len(self.scale)) + self.scale[degree % len(self.scale)]


def plan_song(prompt: str, seed: int) -> _Song:
    """Mood words steer the scale and tempo; the seed decides everything the prompt leaves open."""
    rng, words = _rng(seed, prompt, "music"), set(_words(prompt))
    modes = ("minor", "dorian") if words & DARK_WORDS else ("major", "mixolydian") if words & BRIGHT_WORDS else SCALES
    low, high = (64, 88) if words & SLOW_WORDS else (118, 140) if words & FAST_WORDS else (80, 124)
    tempo = rng.randint(low, high)
    return _Song(
        root=40 + rng.randint(0, 11),
        scale=SCALES[rng.choice(sorted(modes))],
        beat=round(SAMPLE_RATE * 60 / tempo),
        progression=rng.choice(PROGRESSIONS),
    )


ENVELOPES = {"pad": (0.08, 0.6), "lead": (0.01, 4.0), "bass": (0.005, 6.0)}  # attack seconds, decay per second


def _envelope(kind: str, length: int, level: float) -> list[float]:
    """Attack, exponential decay and a short release to zero, so notes never click at either end."""
    attack_seconds, decay = ENVELOPES[kind]
    rate, exp = decay / SAMPLE_RATE, math.exp
    envelope = [level * exp(-k * rate) for k in range(length)]
    attack, release = min(length // 2, round(attack_seconds * SAMPLE_RATE)), min(length // 2, SAMPLE_RATE // 50)
    envelope[:attack] = [v * k / attack for k, v in enumerate(envelope[:attack])]
    envelope[length - release :] = [v * (release - k) / release for k, v in enumerate(envelope[length - release :])]
    return envelope


def _note(midi: int, timbre: str, envelope: list[float]) -> list[float]:
    """A wavetable oscillator under the envelope; the level is in the envelope, so mixing is a plain sum."""
    table, mask = TIMBRES[timbre], TABLE_SIZE - 1
    increment = 440.0 * 2 ** ((midi - 69) / 12) * TABLE_SIZE / SAMPLE_RATE
    return [table[int(k * increment) & mask] * e for k, e in enumerate(envelope)]


class _Notes:
    """Notes and envelopes repeat constantly within a song, so each is computed once per render. The caches live
    only as long as one render: kept across jobs they would grow by megabytes for every new tempo a worker meets."""

    def __init__(self) -> None:
        self._notes: dict[tuple[str, int, int, float], list[float]] = {}
        self._envelopes: dict[tuple[str, int, float], list[float]] = {}

    def __call__(self, kind: str, midi: int, length: int, level: float) -> list[float]:
        key = (kind, midi, length, level)
        if key not in self._notes:
            if (kind, length, level) not in self._envelopes:
                self._envelopes[kind, length, level] = _envelope(kind, length, level)
            self._notes[key] = _note(midi, kind, self._envelopes[kind, length, level])
        return self._notes[key]


def _add(buffer: list[float], offset: int, sound: Sequence[float]) -> None:
    end = min(len(buffer), offset + len(sound))
    if end > offset:
        buffer[offset:end] = [a + b for a, b in zip(buffer[offset:end], sound, strict=False)]


def _chords_and_bass(buffer: list[float], song: _Song, bar_start: int, degree: int, notes: _Notes) -> None:
    bar = 4 * song.beat
    for step in (0, 2, 4):
        _add(buffer, bar_start, notes("pad", song.pitch(degree + step, 2), bar, 0.11))
    for beat in (0, 2):
        _add(buffer, bar_start + beat * song.beat, notes("bass", song.pitch(degree, 0), 2 * song.beat, 0.3))


def _melody(buffer: list[float], song: _Song, bar_start: int, degree: int, rng: random.Random, notes: _Notes) -> None:
    """A random walk that starts on a chord tone, with the occasional rest to let the phrase breathe."""
    position, current = 0.0, degree + rng.choice((0, 2, 4))
    for length in rng.choice(RHYTHMS):
        if rng.random() > 0.12:
            samples = round(length * song.beat)
            _add(buffer, bar_start + round(position * song.beat), notes("lead", song.pitch(current, 3), samples, 0.2))
        current = max(degree - 3, min(degree + 9, current + rng.choice((-2, -1, -1, 1, 1, 2, 0))))
        position += length


@functools.cache
def _percussion(kind: str) -> tuple[float, ...]:
    """A falling sine makes a kick; seeded noise makes a hi-hat tick that sounds the same on every run."""
    if kind == "kick":
        n = round(0.12 * SAMPLE_RATE)
        return tuple(
            0.5 * math.sin(2 * math.pi * (45 * k + 75 * k * (1 - k / n / 2)) / SAMPLE_RATE) * (1 - k / n) ** 2
            for k in range(n)
        )
    noise, n = random.Random(7), round(0.03 * SAMPLE_RATE)
    return tuple(0.07 * noise.uniform(-1, 1) * (1 - k / n) ** 3 for k in range(n))


def _drums(buffer: list[float], song: _Song, bar_start: int) -> None:
    for eighth in range(8):
        _add(buffer, bar_start + eighth * song.beat // 2, _percussion("hat"))
    for beat in (0, 2):
        _add(buffer, bar_start + beat * song.beat, _percussion("kick"))


def render_loop(song: _Song, rng: random.Random, max_samples: int) -> list[float]:
    """Two passes over the progression with different melodies; shorter requests only render what they need."""
    bar = 4 * song.beat
    buffer = [0.0] * min(max_samples, 2 * len(song.progression) * bar)
    notes = _Notes()
    for index, degree in enumerate(song.progression * 2):
        start = index * bar
        if start >= len(buffer):
            break
        _chords_and_bass(buffer, song, start, degree, notes)
        _melody(buffer, song, start, degree, rng, notes)
        _drums(buffer, song, start)
    return buffer


def _to_pcm(samples: list[float]) -> array:
    """Normalise to a fixed headroom so loud and quiet songs end up equally loud without clipping."""
    peak = max(map(abs, samples), default=0.0) or 1.0
    gain = 0.85 * 32767 / peak
    return array("h", [int(v * gain) for v in samples])


def _fade(pcm: array, seconds: float) -> None:
    """Fade both ends: the tiled loop may stop mid-note, and an abrupt cut clicks."""
    n = min(len(pcm) // 2, round(seconds * SAMPLE_RATE))
    if n == 0:
        return
    pcm[:n] = array("h", [int(v * k / n) for k, v in enumerate(pcm[:n])])
    pcm[-n:] = array("h", [int(v * (n - k) / n) for k, v in enumerate(pcm[-n:], start=1)])


def _write_wav(path: Path, pcm: array) -> None:
    if sys.byteorder == "big":  # WAV is little-endian
        pcm.byteswap()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        for start in range(0, len(pcm), SAMPLE_RATE):
            out.writeframes(pcm[start : start + SAMPLE_RATE].tobytes())


def _music(request: GenerationRequest, seed: int, progress: ProgressCallback) -> GenerationResult:
    prompt = request.params.get("prompt") or ""
    total = max(1, round(float(request.params.get("duration") or 10) * SAMPLE_RATE))
    song = plan_song(prompt, seed)
    progress(10)
    loop = _to_pcm(render_loop(song, _rng(seed, prompt, "melody"), total))
    progress(60)
    pcm = loop * (total // len(loop) + 1)
    del pcm[total:]
    _fade(pcm, 0.5 if total > 4 * SAMPLE_RATE else 0.02)
    out = request.workdir / "music.wav"
    _write_wav(out, pcm)
    tempo = round(60 * SAMPLE_RATE / song.beat)
    return GenerationResult(outputs=[_audio_output(out)], metadata={"tempo": tempo, "sampleRate": SAMPLE_RATE})


# ---------------------------------------------------------------------------------------------------------------
# Chat
# ---------------------------------------------------------------------------------------------------------------

# Words that carry no topic; the echo skips them so the reply names what the message is about.
QUESTION_WORDS = {"what", "when", "where", "which", "who", "why", "how", "can", "could", "would", "will", "please"}
FILLER_WORDS = {"a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "does", "for", "from", "i", "if", "in"}
FILLER_WORDS |= {"is", "it", "me", "my", "of", "on", "or", "so", "tell", "that", "the", "this", "to", "was", "with"}
STOPWORDS = frozenset(QUESTION_WORDS | FILLER_WORDS | {"you", "your"})


def _last_user_message(request: GenerationRequest) -> str:
    for message in reversed(request.params.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return str(request.params.get("prompt") or "")


_ECHOES = "echoes your message instead of running a language model"


def _disclaimer(model: str, stand_in: str) -> str:
    """Why the local engine answered, and what it is."""
    if stand_in == "fallback":
        return f"This server has no upstream set up for {model}, so Flixly's built-in offline engine answered: " + (
            f"it {_ECHOES}."
        )
    if stand_in == "test":
        return f"Test keys always run on Flixly's built-in offline engine, which {_ECHOES}. " + (
            "Use a live key for a real answer."
        )
    return f"This answer comes from Flixly's built-in offline engine, which {_ECHOES}. " + (
        "Pick a hosted chat model for a real answer."
    )


def compose_reply(question: str, *, model: str = "", stand_in: str = "") -> str:
    """An honest echo: the local engine has no language model, so it says so (and why it answered) and
    reflects the key words back."""
    disclaimer = _disclaimer(model, stand_in)
    keywords = list(dict.fromkeys(w for w in _WORD.findall(question) if w.lower() not in STOPWORDS))[:8]
    if not keywords:
        return "Local engine reply: I received your message. " + disclaimer
    topic = ", ".join(keywords[:-1]) + f" and {keywords[-1]}" if len(keywords) > 1 else keywords[0]
    verb = "asked about" if question.rstrip().endswith("?") else "wrote about"
    return f"Local engine reply: you {verb} {topic}. " + disclaimer


def _chat(request: GenerationRequest, seed: int, progress: ProgressCallback) -> GenerationResult:
    words = compose_reply(_last_user_message(request), model=request.model, stand_in=request.stand_in).split()
    max_tokens = request.params.get("maxTokens")
    if max_tokens:
        words = words[: int(max_tokens)]
    messages = request.params.get("messages") or [{"content": request.params.get("prompt") or ""}]
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in messages)
    text = " ".join(words)
    if request.on_text:
        for index, word in enumerate(words):  # a word a piece, as a model streams tokens
            request.on_text(word if index == 0 else f" {word}")
    return GenerationResult(text=text, usage={"promptTokens": prompt_tokens, "completionTokens": len(words)})


# ---------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------

Handler = Callable[[GenerationRequest, int, ProgressCallback], GenerationResult]
HANDLERS: dict[str, Handler] = {
    "TEXT_TO_IMAGE": _text_to_image,
    "IMAGE_TO_IMAGE": _image_to_image,
    "TEXT_TO_VIDEO": _video,
    "IMAGE_TO_VIDEO": _video,
    "REFERENCE_TO_VIDEO": _video,
    "TEXT_TO_SPEECH": _speech,
    "TEXT_TO_MUSIC": _music,
    "CHAT": _chat,
}


def generate(request: GenerationRequest, progress: ProgressCallback = lambda p: None) -> GenerationResult:
    """Run one job to completion in this process and describe its outputs as measured from the files."""
    handler = HANDLERS.get(request.type)
    if handler is None:
        raise ProviderError(f"The local engine cannot run {request.type}", transient=False)
    seed = resolve_seed(request.params)
    result = handler(request, seed, progress)
    result.metadata = {"engine": "local", "seed": seed, **result.metadata}
    progress(100)
    return result


class LocalProvider(Provider):
    """Generates synchronously in submit(), so poll() is always done and fetch_outputs() hands the result over."""

    name = "local"
    poll_interval = 0.0

    def __init__(self) -> None:
        self._results: dict[str, GenerationResult] = {}

    def submit(self, request: GenerationRequest) -> str:
        upstream_id = f"local-{request.job_id}"
        self._results[upstream_id] = generate(request)
        return upstream_id

    def poll(self, request: GenerationRequest, upstream_id: str) -> PollResult:
        if upstream_id not in self._results:
            return PollResult("failed", error="The local engine has no result for this job.")
        return PollResult("succeeded", 100)

    def fetch_outputs(self, request: GenerationRequest, upstream_id: str) -> GenerationResult:
        result = self._results.pop(upstream_id, None)
        if result is None:
            raise ProviderError("The local engine has no result for this job.", transient=False)
        return result

    def cancel(self, request: GenerationRequest, upstream_id: str) -> None:
        """Nothing runs in the background, so there is nothing to stop."""

    def run(self, request: GenerationRequest, progress: ProgressCallback, deadline: float) -> GenerationResult:
        """Generate directly; progress reports double as checkpoints, so a job past its deadline stops there."""

        def report(percent: int) -> None:
            if time.monotonic() > deadline:
                raise ProviderError("The local engine ran past the job's deadline.", transient=False)
            progress(percent)

        return generate(request, report)
