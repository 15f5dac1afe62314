"""What the OpenAPI document and its docs page say of each operation, for the API's users.

drf-spectacular would describe an operation by its view's docstring, and a body by its serializer's, inherited
from a base class when the class has none: those are notes for the code's readers. Each operation's summary
and description come from OPERATIONS instead, and an operation missing there fails the schema's generation
(and its test); a body is described by its fields.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema

KEYS = "Needs a key with the `{scope}` scope, or the dashboard's session."

OPERATIONS: dict[str, tuple[str, str]] = {
    "health": (
        "Service health",
        "Whether the database and the job broker answer. 503, in the same shape, when one of them does not.",
    ),
    "models_list": (
        "List models",
        "The model catalog: each model's job types, base price, price tables, parameter ranges and whether it "
        "is available. No key needed.",
    ),
    "models_get": ("Get a model", "One model of the catalog by its id (`flux-dev`, say). No key needed."),
    "generate": (
        "Submit a job",
        "Validates the request against the model's catalog entry, charges its price and queues the job (202). "
        "`?dryRun=true` returns the price without charging. An `Idempotency-Key` header returns the first job "
        "again for the same body within 24 h (409 for another body); `Prefer: wait=N` holds the answer up to "
        "N seconds (at most 60) and returns a finished job with 200. A job that fails or is canceled before it "
        "ran is refunded once. " + KEYS.format(scope="generate"),
    ),
    "jobs_list": (
        "List jobs",
        "The account's jobs, newest first, filtered by `status`, `type`, `model`, `createdAfter` and "
        "`createdBefore`; pass `nextCursor` back as `cursor` for the next page. " + KEYS.format(scope="jobs:read"),
    ),
    "jobs_get": (
        "Get a job",
        "One job: its status, progress, price and refund, and its outputs' signed URLs (valid 24 h). "
        + KEYS.format(scope="jobs:read"),
    ),
    "jobs_cancel": (
        "Cancel a job",
        "A queued job is canceled and refunded in full; a running one is asked to stop; a finished one is "
        "returned unchanged. " + KEYS.format(scope="generate"),
    ),
    "jobs_export_csv": (
        "Export jobs as CSV",
        "The account's jobs created between `from` and `to` (ISO dates or times, at most 90 days apart; by "
        "default the last 30 days), streamed as `text/csv`. Takes the list's filters too. "
        + KEYS.format(scope="jobs:read"),
    ),
    "usage": (
        "Usage this cycle",
        "The balance, the plan and its limits, and the credits and jobs used this billing cycle per kind "
        "(images, videos, audio, chat). " + KEYS.format(scope="billing:read"),
    ),
    "credits_ledger": (
        "Credit ledger",
        "Every credit movement of the account (purchases, grants, debits, refunds, adjustments), newest first, "
        "with the balance each left. " + KEYS.format(scope="billing:read"),
    ),
    "keys_list": ("List API keys", "The account's keys, without their secrets. " + KEYS.format(scope="keys:manage")),
    "keys_create": (
        "Create an API key",
        "A new key with its scopes, expiry (90 days by default, at most 365), optional monthly credit cap, IP "
        "allowlist and model allowlist. The secret `key` is in this answer only: store it now. "
        + KEYS.format(scope="keys:manage"),
    ),
    "keys_roll": (
        "Roll an API key",
        "A new secret for the key (same id), returned once; the old secret stops working at once or after "
        "`graceHours` (at most 24). " + KEYS.format(scope="keys:manage"),
    ),
    "keys_revoke": ("Revoke an API key", "The key stops working at once. " + KEYS.format(scope="keys:manage")),
    "webhook_get": ("Get the webhook", "The account's webhook endpoint. " + KEYS.format(scope="webhooks:manage")),
    "webhook_set": (
        "Set the webhook",
        "Sets the account's HTTPS webhook endpoint. The signing secret (`whsec_...`) is in this answer only. "
        + KEYS.format(scope="webhooks:manage"),
    ),
    "webhook_delete": ("Remove the webhook", "Events stop being sent. " + KEYS.format(scope="webhooks:manage")),
    "webhook_test": (
        "Send a test event",
        "Sends a signed `ping` event to the endpoint and returns the delivery. " + KEYS.format(scope="webhooks:manage"),
    ),
    "webhook_deliveries": (
        "Webhook deliveries",
        "Recent delivery attempts with their status code, latency and next retry. "
        + KEYS.format(scope="webhooks:manage"),
    ),
    "openai_models": ("List models (OpenAI)", "The catalog in OpenAI's list shape, for OpenAI clients."),
    "openai_model": ("Get a model (OpenAI)", "One model in OpenAI's shape."),
    "openai_chat_completions": (
        "Chat completion (OpenAI)",
        "OpenAI's chat completions, with `stream`; each call is a job on the ledger. " + KEYS.format(scope="generate"),
    ),
    "openai_images_generations": (
        "Image generation (OpenAI)",
        "OpenAI's image generation (`url` or `b64_json`); each call is a job on the ledger. "
        + KEYS.format(scope="generate"),
    ),
    "openai_audio_speech": (
        "Speech (OpenAI)",
        "OpenAI's text to speech, answered with the audio file; each call is a job on the ledger. "
        + KEYS.format(scope="generate"),
    ),
}


class PublicSchema(AutoSchema):
    """DEFAULT_SCHEMA_CLASS: each operation's summary and description from OPERATIONS."""

    def get_summary(self) -> str:
        return OPERATIONS[self.get_operation_id()][0]

    def get_description(self) -> str:
        return OPERATIONS[self.get_operation_id()][1]


def without_serializer_notes(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]: no object component keeps its serializer's docstring."""
    for component in result.get("components", {}).get("schemas", {}).values():
        if component.get("type") == "object":
            component.pop("description", None)
    return result
