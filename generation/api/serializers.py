from rest_framework import serializers

from flixly_site.pagination import iso_utc
from flixly_site.parsers import StrictJSONSerializer
from generation.models import AiModel, DeliveryStatus, Job, JobStatus, WebhookDelivery, WebhookEndpoint
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


def job_summary(job: Job) -> dict:
    return {
        "jobId": str(job.id),
        "status": job.status,
        "model": job.model_id,
        "type": job.type,
        "creditsCharged": job.credits_charged,
        "createdAt": iso_utc(job.created_at),
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
        "startedAt": iso_utc(job.started_at),
        "completedAt": iso_utc(job.completed_at),
    }


class OutputFileSchema(serializers.Serializer):
    url = serializers.URLField()
    contentType = serializers.CharField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    durationSeconds = serializers.FloatField(allow_null=True)
    bytes = serializers.IntegerField()


# Named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]: one enum each in the schema.
JOB_STATUSES = JobStatus.values
DELIVERY_STATUSES = DeliveryStatus.values


class JobAcceptedSchema(serializers.Serializer):
    jobId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=JOB_STATUSES)
    model = serializers.CharField()
    type = serializers.CharField()
    creditsCharged = serializers.IntegerField()
    createdAt = serializers.DateTimeField()


class JobSchema(JobAcceptedSchema):
    progress = serializers.IntegerField(allow_null=True)
    params = serializers.DictField()
    creditsRefunded = serializers.IntegerField()
    outputUrl = serializers.URLField(allow_null=True)
    outputs = OutputFileSchema(many=True)
    text = serializers.CharField(allow_null=True)
    usage = serializers.DictField(allow_null=True)
    metadata = serializers.DictField()
    test = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)


class QuoteSchema(serializers.Serializer):
    dryRun = serializers.BooleanField()
    valid = serializers.BooleanField()
    model = serializers.CharField()
    type = serializers.CharField()
    params = serializers.DictField()
    creditsCharged = serializers.IntegerField(help_text="What the job would cost (0 with a test key).")
    available = serializers.BooleanField()
    sufficientCredits = serializers.BooleanField()
    withinMonthlyCap = serializers.BooleanField(
        allow_null=True, help_text="Whether the key's monthly credit cap leaves room for the price; null without a cap."
    )


class ModelSchema(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    vendor = serializers.CharField()
    description = serializers.CharField()
    types = serializers.ListField(child=serializers.CharField())
    credits = serializers.IntegerField()
    pricing = serializers.DictField()
    params = serializers.DictField()
    maxPromptChars = serializers.IntegerField()
    available = serializers.BooleanField()


class WebhookInput(StrictJSONSerializer):
    url = serializers.CharField(max_length=2048, help_text="HTTPS URL on a public address; redirects are not followed.")


class WebhookSchema(serializers.Serializer):
    url = serializers.CharField()
    secret = serializers.CharField(required=False, help_text="whsec_...: only in the answer to PUT.")
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class DeliverySchema(serializers.Serializer):
    id = serializers.UUIDField(help_text="The webhook-id header, the same on every attempt.")
    event = serializers.CharField()
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=DELIVERY_STATUSES)
    attempts = serializers.IntegerField()
    statusCode = serializers.IntegerField(allow_null=True)
    latencyMs = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    nextRetryAt = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()
    deliveredAt = serializers.DateTimeField(allow_null=True)


def endpoint_data(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict:
    data = {"url": endpoint.url, "createdAt": iso_utc(endpoint.created_at), "updatedAt": iso_utc(endpoint.updated_at)}
    return {**data, "secret": endpoint.secret} if with_secret else data


def delivery_data(delivery: WebhookDelivery) -> dict:
    return {
        "id": str(delivery.id),
        "event": delivery.event,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "statusCode": delivery.status_code,
        "latencyMs": delivery.latency_ms,
        "error": delivery.error or None,
        "nextRetryAt": iso_utc(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "createdAt": iso_utc(delivery.created_at),
        "deliveredAt": iso_utc(delivery.delivered_at),
    }
