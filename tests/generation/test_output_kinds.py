"""A job is completed only with the kind of media it was asked for: an upstream that answers 200 with
something else (an error page, a JSON note, nothing) fails the job and refunds it."""

import pytest

from billing.services import wallet_balance
from generation.catalog import catalog_forget
from generation.models import AiModel, Job, JobStatus
from generation.providers.base import GenerationResult, OutputFile
from generation.providers.http import sniff_content_type
from tests.generation.conftest import ScriptedProvider, generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def speech_model(scripted) -> str:
    AiModel.objects.create(
        id="scripted-speech", name="Speech", types=["TEXT_TO_SPEECH"], credits=2, route="scripted", upstream_model="s"
    )
    catalog_forget()
    return "scripted-speech"


def answer_with(monkeypatch, tmp_path, *outputs: tuple[str, bytes]) -> None:
    def run(self, request, progress, deadline):
        files = []
        for index, (content_type, body) in enumerate(outputs):
            path = tmp_path / f"out{index}"
            path.write_bytes(body)
            files.append(OutputFile(path=path, content_type=content_type, bytes=len(body)))
        return GenerationResult(outputs=files)

    monkeypatch.setattr(ScriptedProvider, "run", run)


@pytest.mark.parametrize("outputs", [[("text/plain", b"ok")], [("image/png", b"\x89PNG")], []])
def test_speech_answered_with_anything_but_audio_fails_and_is_refunded(
    api, funded, speech_model, monkeypatch, tmp_path, outputs
):
    answer_with(monkeypatch, tmp_path, *outputs)
    job_id = generate(api, {"model": speech_model, "type": "TEXT_TO_SPEECH", "prompt": "hello"}).json()["data"]["jobId"]
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.credits_refunded, job.outputs) == (JobStatus.FAILED, 2, [])
    assert "audio" in job.error_detail and wallet_balance(user_id=funded.pk) == 100


def test_speech_answered_with_audio_completes(api, funded, speech_model, monkeypatch, tmp_path):
    answer_with(monkeypatch, tmp_path, ("audio/mpeg", b"ID3 audio"))
    job_id = generate(api, {"model": speech_model, "type": "TEXT_TO_SPEECH", "prompt": "hello"}).json()["data"]["jobId"]
    assert Job.objects.get(pk=job_id).status == JobStatus.COMPLETED and wallet_balance(user_id=funded.pk) == 98


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (b"\xff\xfb\x90\x64", "audio/mpeg"),  # an MP3 frame without an ID3 tag
        (b"\xff\xf3\x90\x64", "audio/mpeg"),
        (b"\xff\xf1\x50\x80", "audio/aac"),  # ADTS
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b'{"error": 1}', "application/octet-stream"),
        ('{"error": "quota"}'.encode("utf-16"), "application/octet-stream"),  # FF FE: UTF-16 text, not MPEG
        (b"\xff\xfb\xf0\x64", "application/octet-stream"),  # bitrate index 1111: no MPEG frame
        (b"\xff\xfb\x9c\x64", "application/octet-stream"),  # sample rate index 11: reserved
        (b"\xff\xff\x90\x64", "application/octet-stream"),  # layer I: not MP3
        (b"\xff\xf1\x7c\x80", "application/octet-stream"),  # ADTS sampling index 15: reserved
    ],
)
def test_an_untyped_upstream_file_is_named_by_its_first_bytes(tmp_path, head, content_type):
    path = tmp_path / "file"
    path.write_bytes(head + b"\x00" * 32)
    assert sniff_content_type(path) == content_type
