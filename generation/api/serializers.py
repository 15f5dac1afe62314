from rest_framework import serializers

from generation.models import AiModel, Job
from generation.outputs import output_url
from generation.validation import GenerateInput  # noqa: F401  (documents the request body)


def model_data(model: AiModel, *, available: bool) -> dict:
    return {
        "id": model.id,
        "name": model.name,
        "vendor": model.vendor,
        "description": model.description,
        "types": model.types,
        "credits": model.credits,
        "pricing": model.pricing,
        "params": model.params,
        "maxPromptChars": model.max_prompt_chars,
        "available": available,
    }


def _output(stored: dict) -> dict:
    return {
        "url": output_url(stored["name"]),
        "contentType": stored["contentType"],
        "width": stored.get("width"),
        "height": stored.get("height"),
        "durationSeconds": stored.get("durationSeconds"),
        "bytes": stored.get("bytes"),
    }


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def job_summary(job: Job) -> dict:
    return {
        "jobId": str(job.id),
        "status": job.status,
        "model": job.model_id,
        "type": job.type,
        "creditsCharged": job.credits_charged,
        "createdAt": _iso(job.created_at),
    }


def job_data(job: Job) -> dict:
    outputs = [_output(stored) for stored in job.outputs]
    return {
        **job_summary(job),
        "progress": job.progress,
        "params": job.params,
        "creditsRefunded": job.credits_refunded,
        "outputUrl": outputs[0]["url"] if outputs else None,
        "outputs": outputs,
        "text": job.text or None,
        "usage": job.usage or None,
        "metadata": job.metadata or {},
        "test": job.is_test,
        "error": job.error or None,
        "startedAt": _iso(job.started_at),
        "completedAt": _iso(job.completed_at),
    }


class OutputFileSchema(serializers.Serializer):
    url = serializers.URLField()
    contentType = serializers.CharField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    durationSeconds = serializers.FloatField(allow_null=True)
    bytes = serializers.IntegerField()


class JobSchema(serializers.Serializer):
    jobId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["queued", "running", "completed", "failed", "canceled"])
    progress = serializers.IntegerField(allow_null=True)
    model = serializers.CharField()
    type = serializers.CharField()
    params = serializers.DictField()
    creditsCharged = serializers.IntegerField()
    creditsRefunded = serializers.IntegerField()
    outputUrl = serializers.URLField(allow_null=True)
    outputs = OutputFileSchema(many=True)
    text = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)


class ModelSchema(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    types = serializers.ListField(child=serializers.CharField())
    credits = serializers.IntegerField()
    pricing = serializers.DictField()
    params = serializers.DictField()
    available = serializers.BooleanField()
