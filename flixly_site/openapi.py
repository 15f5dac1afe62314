"""The OpenAPI document as the API really answers: drf-spectacular's postprocessing hook.

The views declare the payloads (their `data`); every JSON answer of /api/v1 carries it in the contract's
envelope, lists with their `nextCursor`, and every error, whatever raised it, is the contract's error
shape. Declaring both once here keeps each view's schema to what is its own.
"""

from typing import TYPE_CHECKING, Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request

if TYPE_CHECKING:  # rest_framework.views loads this module through its settings
    from rest_framework.views import APIView

API_PREFIX = "/api/v1/"
JSON = "application/json"

ERROR_CODES = [
    "unauthorized",
    "insufficient_credits",
    "forbidden",
    "not_found",
    "conflict",
    "idempotency_conflict",
    "payload_too_large",
    "validation_error",
    "rate_limit_exceeded",
    "internal_error",
    "service_unavailable",
    "method_not_allowed",
    "not_acceptable",
    "unsupported_media_type",
    "bad_request",
]

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message"],
            "properties": {
                "code": {"type": "string", "enum": ERROR_CODES},
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "description": "validation_error: each field's messages; other codes: more about the error.",
                },
            },
        }
    },
}

HEADERS = {  # every one a whole number, but the request id
    "X-Request-Id": "This request's id, also in the server's log.",
    "X-Credit-Balance": "Credits left (authenticated requests).",
    "X-RateLimit-Limit": "Requests per minute of the account's plan (authenticated requests).",
    "X-RateLimit-Remaining": "Requests left in this window (authenticated requests).",
    "X-RateLimit-Reset": "Seconds until the window resets (authenticated requests).",
    "X-Token-Expires": "Whole days until the API key expires (key requests; absent for sessions).",
}
ERROR_HEADERS = {"Retry-After": "Seconds to wait (429, and 503 when known)."}


def _header(name: str, description: str) -> dict:
    return {"description": description, "schema": {"type": "string" if name == "X-Request-Id" else "integer"}}


def _enveloped(schema: dict) -> dict:
    if schema.get("type") == "array":
        cursor = {"type": "string", "nullable": True, "description": "Pass as `cursor` for the next page."}
        return {
            "type": "object",
            "required": ["data", "nextCursor"],
            "properties": {"data": schema, "nextCursor": cursor},
        }
    return {"type": "object", "required": ["data"], "properties": {"data": schema}}


def _envelope_answers(operation: dict) -> None:
    for code, response in operation.get("responses", {}).items():
        body = response.get("content", {}).get(JSON)
        if str(code).startswith("2") and body and "data" not in body["schema"].get("properties", {}):
            body["schema"] = _enveloped(body["schema"])


def _describe_headers_and_errors(operation: dict) -> None:
    headers = {name: _header(name, text) for name, text in HEADERS.items()}
    for response in operation.get("responses", {}).values():
        response.setdefault("headers", {}).update(headers)
    error_headers = headers | {name: _header(name, text) for name, text in ERROR_HEADERS.items()}
    operation["responses"]["default"] = {
        "description": "An error, in the contract's shape (see `code`).",
        "headers": error_headers,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def envelope_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]: envelopes, the error shape and the common headers."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if path.startswith(API_PREFIX):
                _envelope_answers(operation)
            _describe_headers_and_errors(operation)
    return result


class EnvelopedMetadata(SimpleMetadata):
    """OPTIONS answers in the contract's envelope like every other answer."""

    def determine_metadata(self, request: Request, view: "APIView") -> dict:
        return {"data": super().determine_metadata(request, view)}
