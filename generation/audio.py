"""Speech in the formats OpenAI's /audio/speech answers with, converted by ffmpeg (imageio-ffmpeg's build,
the one the local engine encodes video with)."""

import subprocess

import imageio_ffmpeg

CONVERT_TIMEOUT_SECONDS = 60

# OpenAI's response_format -> (ffmpeg's output options, the answer's content type). pcm is OpenAI's raw
# 24 kHz 16-bit little-endian mono, without a header.
SPEECH_FORMATS: dict[str, tuple[tuple[str, ...], str]] = {
    "mp3": (("-c:a", "libmp3lame", "-q:a", "4", "-f", "mp3"), "audio/mpeg"),
    "opus": (("-c:a", "libopus", "-f", "ogg"), "audio/ogg"),
    "aac": (("-c:a", "aac", "-f", "adts"), "audio/aac"),
    "flac": (("-c:a", "flac", "-f", "flac"), "audio/flac"),
    "wav": (("-c:a", "pcm_s16le", "-f", "wav"), "audio/wav"),
    "pcm": (("-c:a", "pcm_s16le", "-ar", "24000", "-ac", "1", "-f", "s16le"), "audio/pcm"),
}


class ConversionFailed(Exception):
    pass


def speech_convert(audio: bytes, response_format: str) -> bytes:
    """`audio` (any format ffmpeg reads) re-encoded as `response_format`, one of SPEECH_FORMATS."""
    options, _ = SPEECH_FORMATS[response_format]
    try:
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", "pipe:0"]
        done = subprocess.run(
            [*command, "-vn", *options, "pipe:1"], input=audio, capture_output=True, timeout=CONVERT_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise ConversionFailed(f"ffmpeg took over {CONVERT_TIMEOUT_SECONDS} s") from None
    except (OSError, RuntimeError) as error:  # no ffmpeg binary (imageio-ffmpeg raises RuntimeError)
        raise ConversionFailed(f"ffmpeg did not run: {error}") from None
    if done.returncode != 0 or not done.stdout:
        raise ConversionFailed(done.stderr.decode(errors="replace")[-500:] or f"ffmpeg exited {done.returncode}")
    return done.stdout
