import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from generation.kinds import TYPE_LABELS

# A job's longest time limit. A job and its one retry (started by the reaper once the first attempt is past
# its deadline), hard limits included, end within the Redis broker's visibility timeout (settings: an hour):
# a vanished worker's message, handed out again after it, then finds the job finished, not a live second
# attempt to take over and fail.
MAX_JOB_SECONDS = 1500


class Route(models.TextChoices):
    LOCAL = "local", "Built-in local engine"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
    REPLICATE = "replicate", "Replicate"
    FAL = "fal", "fal"


class AiModel(models.Model):
    """One catalog entry. Loaded from generation/catalog.json by sync_catalog; staff edit or disable it."""

    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=100)
    vendor = models.CharField(max_length=60, blank=True)
    description = models.CharField(max_length=300, blank=True)
    types = models.JSONField(default=list)
    credits = models.PositiveBigIntegerField(help_text="Price of the model's default request.")
    pricing = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    max_prompt_chars = models.PositiveIntegerField(default=2000)
    route = models.CharField(max_length=20, choices=Route.choices)
    upstream_model = models.CharField(max_length=200)
    timeout_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_JOB_SECONDS)],
        help_text=f"A job's time limit, at most {MAX_JOB_SECONDS} s: a job and its one retry must end within the "
        "hour after which Redis hands a vanished worker's message out again.",
    )
    enabled = models.BooleanField(default=True)
    staff_edited = models.BooleanField(
        default=False,
        db_default=False,  # the previous release's code, still running while a deploy migrates, omits it
        help_text="Ticked when staff save the model here: sync_catalog (run by every `make run`) then keeps its "
        "settings. Untick it and save to take the catalog file's settings at the next sync.",
    )
    sort_order = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("sort_order", "id")
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own for either key: the indexes below start with the user, and the model's needs
    # no LIKE index. Every job changes status two or three times, and each change writes every index.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs", db_index=False)
    api_key_id = models.UUIDField(null=True, blank=True)
    is_test = models.BooleanField(default=False, help_text="Submitted with a test key: free, local engine.")
    model = models.ForeignKey(AiModel, on_delete=models.PROTECT, related_name="jobs", db_index=False)
    type = models.CharField(max_length=20)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Asked for as a streamed chat completion: the worker writes the reply to a Redis stream as it comes.
    live_reply = models.BooleanField(default=False, db_default=False)
    route = models.CharField(max_length=20, choices=Route.choices, help_text="Where it actually runs.")
    credits_charged = models.PositiveBigIntegerField(default=0)  # as wide as the ledger's amounts
    credits_refunded = models.PositiveBigIntegerField(default=0)
    input_file = models.CharField(max_length=300, blank=True, help_text="Storage name of the input image.")
    outputs = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True, help_text="Chat reply.")
    usage = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True, help_text="Generic message shown to the user.")
    error_detail = models.TextField(blank=True, help_text="For staff only; never shown to users.")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    webhook_url = models.CharField(
        max_length=2048, blank=True, default="", db_default="", help_text="Per-job override of the account's endpoint."
    )
    request_hash = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # The Celery node (worker@host) running the current attempt: the same node starting again takes it back.
    worker = models.CharField(max_length=255, blank=True, default="", db_default="")
    # The queue message running the attempt ("<task id>:<retries>"): a message handed out again after its
    # attempt was replaced (an hour late, by Redis) takes nothing over (services.job_take_over).
    message = models.CharField(max_length=100, blank=True, default="", db_default="")
    started_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="job_idempotency_per_user",
            ),
            models.CheckConstraint(
                condition=Q(credits_refunded__lte=models.F("credits_charged")), name="job_refund_within_charge"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="job_user_recent"),
            models.Index(fields=["user", "status"], name="job_user_status"),
            models.Index(fields=["status", "enqueued_at"], name="job_status_enqueued"),
            # The job list filtered by model or by type, newest first: a filter that matches few of an
            # account's jobs reads just those, not every job the account has. The model's also serves
            # the catalog's "is this model used" lookups; job_recent serves the staff's list of all jobs.
            models.Index(fields=["model", "user", "-created_at", "-id"], name="job_model_user_recent"),
            models.Index(fields=["user", "type", "-created_at", "-id"], name="job_user_type_recent"),
            models.Index(fields=["-created_at", "-id"], name="job_recent"),
            # The parallel-task check on every submit: only unfinished jobs, so it stays small however
            # many jobs an account has finished.
            models.Index(fields=["user"], condition=Q(status__in=ACTIVE_STATUSES), name="job_user_active"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.model_id} {self.id}"

    @property
    def type_label(self) -> str:
        return TYPE_LABELS.get(self.type, self.type)

    @property
    def prompt_text(self) -> str:
        return prompt_text(self.params)


def prompt_text(params: dict) -> str:
    """What the job was asked: its prompt, or a chat's user messages."""
    if "prompt" in params:
        return str(params["prompt"])
    return "\n\n".join(str(m.get("content", "")) for m in params.get("messages", []) if m.get("role") == "user")


class JobEvent(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20)
    at = models.DateTimeField(auto_now_add=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("at", "id")

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%H:%M:%S}"


class WorkerNode(models.Model):
    """A Celery worker node (worker@host, as in Job.worker) and its last heartbeat: beat's reaper takes back the
    running jobs of a node silent for FLIXLY_WORKER_LOST_AFTER."""

    name = models.CharField(max_length=255, unique=True)
    # The database's clock, never the worker's: a worker machine's clock step cannot make its node look silent.
    seen_at = models.DateTimeField("last seen")

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class WebhookEndpoint(models.Model):
    """The account's one webhook endpoint and the secret that signs every delivery (per-job URLs too)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoint")
    url = models.CharField(max_length=2048)
    secret = models.CharField(max_length=64, help_text="whsec_...: shown to the user once, when it is set.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event for one URL; its id is the `webhook-id` header, the same on every attempt."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False)
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, db_index=False)
    event = models.CharField(max_length=40)
    url = models.CharField(max_length=2048)
    body = models.TextField(help_text="The exact JSON the signature covers.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Of the last attempt.")
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Of the last attempt.")
    error = models.CharField(max_length=200, blank=True, help_text="Why the last attempt failed.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="delivery_user_recent"),
            models.Index(fields=["-created_at", "-id"], name="delivery_recent"),  # staff's list of all deliveries
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_pending_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.url}"
