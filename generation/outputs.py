"""Job files in Django's storage (var/media locally, S3 with django-storages) and their signed URLs."""

import mimetypes
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from generation.kinds import CATEGORY
from generation.providers.base import GenerationResult, ProviderError

URL_LIFETIME = 24 * 3600
SALT = "flixly.outputs"


def _uses_s3() -> bool:
    return settings.STORAGES["default"]["BACKEND"].startswith("storages.")


MEDIA_OF_CATEGORY = {"images": "image/", "videos": "video/", "audio": "audio/"}


def outputs_check(*, job_type: str, result: GenerationResult) -> None:
    """A media job completes only with files of its kind: an upstream that answers 200 with an error page,
    a note or nothing has failed (and the job is refunded), not delivered."""
    media = MEDIA_OF_CATEGORY.get(CATEGORY[job_type])
    if media is None:
        return
    sent = [output.content_type for output in result.outputs]
    if not sent or not all(content_type.startswith(media) for content_type in sent):
        kind = media.rstrip("/")
        raise ProviderError(f"The upstream answered {', '.join(sent) or 'no file'} where {kind} was expected.")


def input_store(*, user_id: int, job_id: str, content: bytes) -> str:
    return default_storage.save(f"inputs/{user_id}/{job_id}", ContentFile(content))


def outputs_store(*, user_id: int, job_id: str, attempt: int, result: GenerationResult) -> list[dict]:
    """Save the attempt's outputs under names of its own: an attempt that lost the job deletes its files,
    and on a storage that overwrites (S3's default) a shared name would be the winner's file."""
    stored = []
    for index, output in enumerate(result.outputs):
        suffix = output.path.suffix or mimetypes.guess_extension(output.content_type) or ""
        with open(output.path, "rb") as handle:
            name = default_storage.save(f"outputs/{user_id}/{job_id}/{attempt}/{index}{suffix}", File(handle))
        stored.append(
            {
                "name": name,
                "contentType": output.content_type,
                "width": output.width,
                "height": output.height,
                "durationSeconds": round(output.duration_seconds, 3) if output.duration_seconds else None,
                "bytes": output.bytes,
            }
        )
    return stored


def outputs_delete(outputs: list[dict]) -> None:
    for output in outputs:
        default_storage.delete(output["name"])


def output_url(name: str) -> str:
    """A link that works for 24 hours without credentials: the signature is the permission."""
    if _uses_s3():
        return default_storage.url(name)  # presigned, AWS_QUERYSTRING_EXPIRE = 24 h
    token = signing.dumps(name, salt=SALT)
    return settings.SITE_URL + reverse("job-output", args=[token, Path(name).name])


def output_download_name(job_id: object, filename: str) -> str:
    """What a saved output is called: a job's outputs are 0.png, 1.png...; saved, every job's would clash."""
    return f"flixly-{job_id}-{filename}"


def output_name_from_token(token: str) -> str | None:
    try:
        name = signing.loads(token, salt=SALT, max_age=URL_LIFETIME)
    except signing.BadSignature:  # also SignatureExpired
        return None
    return name if isinstance(name, str) and name.startswith("outputs/") else None


def local_copy(name: str, folder: Path) -> Path:
    """Copy a stored input into the worker's scratch folder (providers read plain files)."""
    target = folder / "input"
    with default_storage.open(name, "rb") as source, open(target, "wb") as sink:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            sink.write(chunk)
    return target
