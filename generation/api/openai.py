"""The OpenAI-compatible surface under /openai/v1: the official `openai` client pointed at
<host>/openai/v1 works unchanged with a Flixly key.

Each call is a job like any other: validated from the catalog, charged, on the ledger and in
/api/v1/jobs, submitted through job_submit and answered once the job has finished (at most
WAIT_SECONDS); a streamed chat completion starts with the reply's first piece (_streamed). Field names
follow OpenAI's (`max_tokens`, `size`, `input`), also in 422 details.
"""

import base64
import functools
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.ratelimit import PARALLEL_RETRY_AFTER, WaitSlot, account_wait_slot
from flixly_site.errors import DO_NOT_RETRY, ApplicationError, RateLimited, ServiceUnavailable, ValidationFailed
from flixly_site.parsers import is_json_object
from generation.api.views import idempotency_key, wait_for
from generation.audio import SPEECH_FORMATS, ConversionFailed, speech_convert
from generation.catalog import catalog_get, catalog_get_or_404, catalog_models
from generation.models import FINISHED_STATUSES, AiModel, Job, JobStatus
from generation.outputs import output_url
from generation.services import job_cancel, job_submit
from generation.streams import ReplyReader, streams_live
from generation.validation import validate_generate

logger = logging.getLogger("flixly.generation")

WAIT_SECONDS = 60
READ_BLOCK_MS = 1000  # how long a streamed reply waits for its next piece before it looks at the job
SIZE_HELP = "Use WIDTHxHEIGHT, such as 1024x1024."


def _body(request: Request) -> dict:
    if not is_json_object(request.data):
        raise ValidationFailed("The body must be a JSON object.", details={"body": ["Expected a JSON object."]})
    return dict(request.data)


def _run(request: Request, fields: dict, renamed: dict[str, str]) -> Job:
    """Submit the job and wait for it; a 422 names OpenAI's fields (`renamed`: ours -> theirs)."""
    with _wait_slot(request):
        return _answered(request, _submit(request, fields, renamed), WAIT_SECONDS)


def _wait_slot(request: Request) -> WaitSlot:
    """One of the account's wait slots for a call that holds its thread until the job ends, taken before
    anything is charged; a 429 when they are all in use (replays of one Idempotency-Key, say)."""
    slot = account_wait_slot(request.user)
    if not slot.taken:
        raise RateLimited(
            "As many calls as your plan runs jobs at a time are already waiting on theirs. Try again when one ends.",
            headers={"Retry-After": str(PARALLEL_RETRY_AFTER)},
        )
    return slot


def _submit(request: Request, fields: dict, renamed: dict[str, str], *, live_reply: bool = False) -> Job:
    fields = {name: value for name, value in fields.items() if value is not None}
    try:
        valid = validate_generate(fields, json_types=True)
    except ValidationFailed as error:
        raise _in_openai_terms(error, renamed) from None
    submitted = job_submit(
        user=request.user,
        identity=request.auth,
        request=valid,
        idempotency_key=idempotency_key(request),
        body=fields,
        live_reply=live_reply,
    )
    request.replayed = not submitted.created
    return submitted.job


def _outcome(job: Job) -> Job | None:
    """The job if it completed; NotRetried if it ended otherwise; None while it is still queued or running."""
    if job.status == JobStatus.COMPLETED:
        return job
    if job.status in FINISHED_STATUSES:
        raise NotRetried(f"{job.error or 'The job was canceled; its credits were refunded.'} (job {job.id})")
    return None


def _answered(request: Request, job: Job, seconds: float) -> Job:
    """The job once it has completed, waiting at most `seconds`; else NotRetried saying what became of it."""
    if (done := _outcome(wait_for(job, seconds))) is not None:
        return done
    job = job_cancel(user=request.user, job_id=job.pk)  # queued: refunded now; running: stops at its next step
    late = f"The job did not finish within {WAIT_SECONDS} seconds"
    if job.status == JobStatus.CANCELED:
        raise NotRetried(f"{late} and was canceled; its credits were refunded (job {job.id}).")
    raise NotRetried(f"{late}; it was asked to stop and is refunded if it does: GET /api/v1/jobs/{job.id}.")


def _one_choice(data: dict) -> None:
    if data.get("n", 1) not in (1, None) or isinstance(data.get("n"), bool):
        raise _refused("n", "Only n=1 is supported: send one request per result.")


def _one_of(data: dict, field: str, choices: tuple[str, ...], *, default: str) -> str:
    """The field's value, one of `choices` (`default` when absent or null); anything else is a 422 naming it."""
    value = data.get(field)
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise _refused(field, f"Use one of {', '.join(choices)}.")
    return value


def _refused(field: str, message: str) -> ValidationFailed:
    return _in_openai_terms(ValidationFailed(details={field: [message]}), {})


def _in_openai_terms(error: ValidationFailed, renamed: dict[str, str]) -> ValidationFailed:
    """The 422 with OpenAI's field names (a type the model lacks is the model's fault here), and the reasons
    in its message too: the openai client shows only the message."""
    renamed = {"type": "model", **renamed}
    details: dict[str, list[str]] = {}
    for name, messages in (error.details or {}).items():
        theirs = renamed.get(name, name)
        said = details.setdefault(theirs, [])  # width and height are both `size`: one reason once
        said.extend(m for m in (re.sub(rf"\b{re.escape(name)}\b", theirs, m) for m in messages) if m not in said)
    reasons = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in details.items())
    return ValidationFailed(f"The request failed validation. {reasons}", details=details)


class NotRetried(ServiceUnavailable):
    """A job that failed or was stopped after it was charged and refunded: the openai client retries 5xx
    answers on its own and would submit it again, unless told not to (its `x-should-retry` header)."""

    def __init__(self, message: str):
        super().__init__(message, headers=DO_NOT_RETRY)


def _openai_model(model: AiModel) -> dict:
    return {
        "id": model.id,
        "object": "model",
        "created": int(model.updated_at.timestamp()),
        "owned_by": model.vendor or "flixly",
    }


class ModelsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="openai_models", responses=dict)
    def get(self, request: Request) -> Response:
        return Response({"object": "list", "data": [_openai_model(m) for m in catalog_models().values()]})


class ModelApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="openai_model", responses=dict)
    def get(self, request: Request, id: str) -> Response:
        return Response(_openai_model(catalog_get_or_404(id, listing="/openai/v1/models")))


def _text_content(content: object) -> object:
    """OpenAI's list-of-parts content as one string (text parts only); anything else is left for validation."""
    if not isinstance(content, list):
        return content
    if not all(isinstance(part, dict) and part.get("type") == "text" for part in content):
        raise _refused("messages", "Only text content parts are supported.")
    if not all(isinstance(part.get("text", ""), str) for part in content):
        raise _refused("messages", "A text part's text must be a string.")
    return "".join(part.get("text", "") for part in content)


ROLES = {"developer": "system"}  # OpenAI's newer name for the system role


def _message(message: object) -> object:
    if not isinstance(message, dict):
        return message
    role, content = message.get("role"), message.get("content")
    if role == "assistant" and content is None:
        content = ""  # an assistant turn that only called tools
    role = ROLES.get(role, role) if isinstance(role, str) else role  # any other role is validation's to refuse
    return {"role": role, "content": _text_content(content)}


def _messages(messages: object) -> object:
    return [_message(m) for m in messages] if isinstance(messages, list) else messages


class AnyAccept(DefaultContentNegotiation):
    """OpenAI answers whatever the Accept header says: a stream goes to clients that accept only
    text/event-stream, speech to the openai client's application/octet-stream. Errors are the contract's JSON."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class JobApi(APIView):
    """An OpenAI endpoint answered by a job (_submit): a replayed Idempotency-Key says so, as on /generate."""

    required_scope = "generate"
    content_negotiation_class = AnyAccept

    def finalize_response(self, request: Request, response: HttpResponse, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(request, "replayed", False):
            response["Idempotent-Replayed"] = "true"
        return response


class ChatCompletionsApi(JobApi):
    @extend_schema(operation_id="openai_chat_completions", request=dict, responses=dict)
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        data = _body(request)
        _one_choice(data)
        _plain_text_only(data)
        if data.get("stream") is not None and not isinstance(data["stream"], bool):
            raise _refused("stream", "Use true or false.")
        limit = _token_limit_field(data)
        fields = {
            "model": data.get("model"),
            "type": "CHAT",
            "messages": _messages(data.get("messages")),
            "maxTokens": data.get(limit),
        }
        renamed = {"maxTokens": limit}
        if data.get("stream") is True:
            return _streamed(request, fields, renamed, include_usage=_wants_usage(data))
        return Response(_completion(_run(request, fields, renamed)))


_TOOLS = "Tool and function calls are not supported: the reply is plain text."
_TEXT_ONLY = "Only plain text replies are supported."

# OpenAI's chat fields that ask for more than a plain text reply, each refused when it asks: answered with
# plain text anyway, a tool-calling agent or a JSON parser would fail later, far from the cause.
_BEYOND_PLAIN_TEXT: dict[str, tuple[Callable[[Any], bool], str]] = {
    "tools": (bool, _TOOLS),
    "tool_choice": (lambda value: value not in (None, "none", "auto"), _TOOLS),
    "functions": (bool, _TOOLS),
    "function_call": (lambda value: value not in (None, "none", "auto"), _TOOLS),
    "response_format": (lambda value: value not in (None, {"type": "text"}), f"{_TEXT_ONLY} JSON modes are not."),
    "logprobs": (bool, "Log probabilities are not supported."),
    "top_logprobs": (bool, "Log probabilities are not supported."),
    "modalities": (lambda value: value not in (None, ["text"]), f"{_TEXT_ONLY} For audio use /audio/speech."),
    "audio": (lambda value: value is not None, f"{_TEXT_ONLY} For audio use /audio/speech."),
    "prediction": (lambda value: value is not None, "Predicted outputs are not supported."),
    "web_search_options": (lambda value: value is not None, "Web search is not supported."),
}


def _plain_text_only(data: dict) -> None:
    for field, (asks, message) in _BEYOND_PLAIN_TEXT.items():
        if asks(data.get(field)):
            raise _refused(field, message)


def _token_limit_field(data: dict) -> str:
    """The field that sets the reply's token limit: OpenAI's newer max_completion_tokens when it has a
    value (a null one leaves max_tokens in force), else max_tokens. A 422 names the one sent."""
    return "max_completion_tokens" if data.get("max_completion_tokens") is not None else "max_tokens"


def _usage(job: Job) -> dict:
    prompt, completion = job.usage.get("promptTokens", 0), job.usage.get("completionTokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _completion(job: Job) -> dict:
    return {
        "id": f"chatcmpl-{job.id}",
        "object": "chat.completion",
        "created": int(job.created_at.timestamp()),
        "model": job.model_id,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": job.text}, "finish_reason": _finish(job)}],
        "usage": _usage(job),
    }


def _finish(job: Job) -> str:
    limit = job.params.get("maxTokens")
    return "length" if limit and job.usage.get("completionTokens", 0) >= limit else "stop"


def _wants_usage(data: dict) -> bool:
    options = data.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _streamed(request: Request, fields: dict, renamed: dict[str, str], *, include_usage: bool) -> StreamingHttpResponse:
    """A streamed completion. With live reply streams its pieces go out as the worker writes them; a job
    that ends before its first piece (or without live streams) is answered as the finished job, so a
    failure is still an HTTP error and not a broken stream."""
    slot = _wait_slot(request)
    try:
        job = _submit(request, fields, renamed, live_reply=True)
        deadline = time.monotonic() + WAIT_SECONDS
        reader = ReplyReader(job.pk) if job.live_reply and streams_live() else None
        first = _first_pieces(reader, job, deadline) if reader else []
        if not first or _status(job) in (JobStatus.FAILED, JobStatus.CANCELED):
            job = _answered(request, job, max(0.0, deadline - time.monotonic()))
            chunks = _chunks(job, _words(job.text), lambda: job, include_usage=include_usage)
        else:
            outcome = functools.partial(_reply_outcome, job, deadline)
            chunks = _chunks(job, _live_pieces(reader, job, first, deadline), outcome, include_usage=include_usage)
    except BaseException:
        slot.release()
        raise
    return _event_stream(chunks, then=slot.release)  # the slot is held until the last piece is sent


def _reply_outcome(job: Job, deadline: float) -> Job:
    """How a reply that has begun to stream ended. One still running past the deadline is not canceled:
    its reader already has part of it, so it goes on and is charged."""
    if (done := _outcome(wait_for(job, max(0.0, deadline - time.monotonic())))) is not None:
        return done
    raise NotRetried(
        f"The reply did not finish within {WAIT_SECONDS} seconds. The job goes on and is charged when it "
        f"completes: GET /api/v1/jobs/{job.id} has the whole reply."
    )


def _status(job: Job) -> str | None:
    return Job.objects.filter(pk=job.pk).values_list("status", flat=True).first()


def _first_pieces(reader: ReplyReader, job: Job, deadline: float) -> list[str]:
    while time.monotonic() < deadline:
        pieces = list(reader.read(READ_BLOCK_MS))
        if pieces or reader.ended or _status(job) in FINISHED_STATUSES:
            return pieces
    return []


def _live_pieces(reader: ReplyReader, job: Job, first: list[str], deadline: float) -> Iterator[str]:
    yield from first
    while not reader.ended and time.monotonic() < deadline:
        pieces = list(reader.read(READ_BLOCK_MS))
        yield from pieces
        if not pieces and _status(job) in FINISHED_STATUSES:
            return


def _words(text: str) -> Iterator[str]:
    """A finished reply a word at a time, as OpenAI streams it."""
    words = text.split(" ")
    for index, word in enumerate(words):
        yield word if index == len(words) - 1 else word + " "


def _chunks(job: Job, pieces: Iterator[str], outcome: Callable[[], Job], *, include_usage: bool) -> Iterator[dict]:
    """chat.completion.chunk objects: the role, each piece, then what the finished job adds (the rest of its
    text, if pieces were missed) with its finish reason; an `error` object if it did not complete."""
    head = {"id": f"chatcmpl-{job.id}", "object": "chat.completion.chunk", "created": int(job.created_at.timestamp())}
    head["model"] = job.model_id

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    sent = []
    for piece in pieces:
        sent.append(piece)
        yield chunk({"content": piece})
    # The answer is under way: an error event is the only way left to say it did not complete.
    try:
        job = outcome()
    except NotRetried as error:
        yield _stream_error(error.message, job)
        return
    except Exception:
        logger.exception("streamed reply of job %s broke off", job.id)
        yield _stream_error("The reply broke off.", job)
        return
    written = "".join(sent)
    if not job.text.startswith(written):  # a worker was lost mid-reply, and the job ran again
        yield _stream_error("The reply was interrupted and written again.", job)
        return
    if len(job.text) > len(written):
        yield chunk({"content": job.text[len(written) :]})
    yield chunk({}, _finish(job))
    if include_usage:
        yield {**head, "choices": [], "usage": _usage(job)}


def _stream_error(message: str, job: Job) -> dict:
    if str(job.id) not in message:
        message += f" The whole reply, once the job completes: GET /api/v1/jobs/{job.id}."
    return {"error": {"message": message, "type": "server_error", "code": None}}


def _event_stream(chunks: Iterator[dict], *, then: Callable[[], None]) -> StreamingHttpResponse:
    """The chunks as server-sent events; `then` runs once they are sent, or the client has gone."""

    def events() -> Iterator[bytes]:
        try:
            for chunk in chunks:
                yield f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()
            yield b"data: [DONE]\n\n"
        finally:
            then()

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


def _size(value: object) -> tuple[int | None, int | None]:
    if value is None or value == "auto":  # OpenAI's "auto" lets the model choose: its default size here
        return None, None
    width, _, height = str(value).partition("x")
    if not (width.isascii() and width.isdigit() and height.isascii() and height.isdigit()):
        raise _refused("size", SIZE_HELP)
    return int(width), int(height)


class ImageGenerationsApi(JobApi):
    @extend_schema(operation_id="openai_images_generations", request=dict, responses=dict)
    def post(self, request: Request) -> Response:
        data = _body(request)
        _one_choice(data)
        response_format = _one_of(data, "response_format", ("url", "b64_json"), default="url")
        width, height = _size(data.get("size"))
        fields = {"model": data.get("model"), "type": "TEXT_TO_IMAGE", "prompt": data.get("prompt")}
        fields |= {"width": width, "height": height, "style": data.get("style")}
        job = _run(request, fields, {"width": "size", "height": "size"})
        name = job.outputs[0]["name"]
        image = {"url": output_url(name)} if response_format == "url" else {"b64_json": _base64_of(name)}
        return Response({"created": int(job.created_at.timestamp()), "data": [image]})


def _base64_of(name: str) -> str:
    with default_storage.open(name, "rb") as stored:
        return base64.b64encode(stored.read()).decode()


class SpeechApi(JobApi):
    @extend_schema(
        operation_id="openai_audio_speech",
        request=dict,
        responses={(200, content_type): bytes for _, content_type in SPEECH_FORMATS.values()},
    )
    def post(self, request: Request) -> HttpResponse:
        data = _body(request)
        response_format = _one_of(data, "response_format", tuple(SPEECH_FORMATS), default="mp3")  # OpenAI's default
        if data.get("stream_format") not in (None, "audio"):  # "sse" would expect events, not the file
            raise _refused("stream_format", "Only audio is supported: the answer is the audio file itself.")
        fields = {"model": data.get("model"), "type": "TEXT_TO_SPEECH", "prompt": data.get("input")}
        fields |= {"voice": _voice(data.get("model"), data.get("voice")), "speed": data.get("speed")}
        return _speech_answer(_run(request, fields, {"prompt": "input"}), response_format)


# The openai client requires a voice and developers send OpenAI's names, which most models lack.
OPENAI_VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"}


def _voice(model_id: object, voice: object) -> object:
    """The voice to ask for: an OpenAI voice the model does not offer is left out, so the job takes the
    model's default voice (and records it); any other voice is validation's to accept or refuse."""
    if not (isinstance(voice, str) and voice in OPENAI_VOICES and isinstance(model_id, str)):
        return voice
    if (model := catalog_get(model_id)) is None:
        return voice
    spec = model.params.get("voice")
    offered = spec is not None and ("allowed" not in spec or voice in spec["allowed"])
    return voice if offered else None


def _speech_answer(job: Job, response_format: str) -> HttpResponse:
    output, content_type = job.outputs[0], SPEECH_FORMATS[response_format][1]
    if output["contentType"] == content_type:
        return FileResponse(default_storage.open(output["name"], "rb"), content_type=content_type)
    with default_storage.open(output["name"], "rb") as stored:
        try:
            return HttpResponse(speech_convert(stored.read(), response_format), content_type=content_type)
        except ConversionFailed as error:
            logger.error("speech of job %s not converted to %s: %s", job.id, response_format, error)
    # Not retried: the job completed and was charged, and a retry would submit and charge another one.
    raise ApplicationError(
        f"The speech could not be converted to {response_format}. The job completed and was charged; "
        f"its {output['contentType']} file is listed at GET /api/v1/jobs/{job.id}.",
        headers=DO_NOT_RETRY,
    )
