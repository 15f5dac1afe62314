"""Checks a generate request against the catalog: every bad field is named in one 422."""

import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.fields import SkipField, empty

from flixly_site.errors import PayloadTooLarge, ValidationFailed
from flixly_site.parsers import json_type_error, unknown_fields
from generation.catalog import catalog_absence, catalog_get
from generation.kinds import CATEGORY, JOB_TYPES, NEEDS_IMAGE, TYPE_LABELS, VISUAL
from generation.models import AiModel
from generation.outbound import NotAnImage, OutboundError, check_image, check_url
from generation.pricing import price_for

# Fields checked against each model's own params (ranges and allowed values).
MODEL_PARAMS = (
    "width",
    "height",
    "steps",
    "style",
    "duration",
    "resolution",
    "fps",
    "voice",
    "speed",
    "language",
    "maxTokens",
)
MAX_PROMPT_CHARS = 2000


class GenerateInput(serializers.Serializer):
    """Shapes and global bounds from the contract; per-model rules come after, from the catalog."""

    model = serializers.CharField(max_length=64)
    type = serializers.ChoiceField(choices=JOB_TYPES)
    prompt = serializers.CharField(required=False, max_length=32000, trim_whitespace=False)
    negativePrompt = serializers.CharField(required=False, max_length=MAX_PROMPT_CHARS, allow_blank=True)
    width = serializers.IntegerField(required=False, min_value=256, max_value=2048)
    height = serializers.IntegerField(required=False, min_value=256, max_value=2048)
    steps = serializers.IntegerField(required=False, min_value=1, max_value=50)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**32 - 1)
    style = serializers.CharField(required=False, max_length=60)
    duration = serializers.IntegerField(required=False, min_value=1, max_value=600)  # whole seconds, as priced
    resolution = serializers.ChoiceField(required=False, choices=["480p", "720p", "1080p"])
    fps = serializers.IntegerField(required=False, min_value=1, max_value=60)
    imageUrl = serializers.CharField(required=False, max_length=2048)
    voice = serializers.CharField(required=False, max_length=64)
    speed = serializers.FloatField(required=False, min_value=0.5, max_value=2.0)
    language = serializers.CharField(required=False, max_length=16)
    webhookUrl = serializers.CharField(required=False, max_length=2048)
    messages = serializers.ListField(child=serializers.DictField(), required=False, max_length=200)
    maxTokens = serializers.IntegerField(required=False, min_value=1, max_value=32000)


# Bound once: a Serializer deep-copies all its fields for every instance (about 1 ms a request here),
# and a field's run_validation keeps no state, so threads can share these.
FIELDS = GenerateInput().fields
KNOWN_FIELDS = set(FIELDS) | {"image"}


@dataclass(frozen=True)
class ValidRequest:
    model: AiModel
    type: str
    params: dict[str, Any]
    price: int
    image_url: str | None
    webhook_url: str | None = None

    @property
    def category(self) -> str:
        return CATEGORY[self.type]


def _messages(detail: Any) -> list[str]:
    return [str(m) for m in detail] if isinstance(detail, list) else [str(detail)]


def _shape(data: dict, *, json_types: bool) -> tuple[dict, dict[str, list[str]]]:
    """GenerateInput's field rules, applied field by field (what Serializer.is_valid does, minus the copies):
    the fields that pass, and the errors of those that do not. With json_types (a JSON body) each field must
    also arrive as its own type; form fields are all text."""
    shaped: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, field in FIELDS.items():
        value = data.get(name, empty)
        if value is empty and not field.required and field.default is empty:
            continue  # absent and optional: what run_validation would say by raising SkipField, for less
        if json_types and value is not empty and (wrong := json_type_error(field, value)):
            errors[name] = [wrong]
            continue
        try:
            shaped[name] = _whole_as_int(field.run_validation(value))
        except SkipField:
            pass  # optional and absent
        except serializers.ValidationError as error:
            errors[name] = _messages(error.detail)
    errors.update(unknown_fields(set(data) - KNOWN_FIELDS))
    return shaped, errors


def _whole_as_int(value: Any) -> Any:
    """A FloatField's whole number as an int: `"speed": 1` is echoed as 1, not 1.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _listing(values) -> str:
    return ", ".join(str(v) for v in values)


def _check_range(value: Any, spec: dict, model: AiModel) -> str | None:
    # Without the field's name: the 422 files it under the field, and the dashboard shows it by the field.
    if "allowed" in spec and value not in spec["allowed"]:
        return f"Must be one of {_listing(spec['allowed'])} for {model.name}."
    if "min" in spec and value < spec["min"]:
        return f"Must be between {spec['min']} and {spec.get('max')} for {model.name}."
    if "max" in spec and value > spec["max"]:
        return f"Must be between {spec.get('min')} and {spec['max']} for {model.name}."
    return None


def _type_name(job_type: str) -> str:
    return f"{TYPE_LABELS.get(job_type, job_type).lower()} ({job_type})"


def _model_params(model: AiModel, data: dict, errors: dict) -> dict:
    params: dict[str, Any] = {}
    for name in MODEL_PARAMS:
        spec = model.params.get(name)
        if name in data and spec is None:
            errors[name] = [f"{model.id} does not take {name}."]
        elif name in data:
            problem = _check_range(data[name], spec, model)
            if problem:
                errors[name] = [problem]
            params[name] = data[name]
        elif spec is not None and "default" in spec:
            params[name] = spec["default"]
    return params


def _prompt(model: AiModel, job_type: str, data: dict, errors: dict) -> dict:
    if job_type == "CHAT":
        return _chat_input(model, data, errors)
    prompt = (data.get("prompt") or "").strip()
    limit = model.max_prompt_chars if job_type == "TEXT_TO_SPEECH" else min(model.max_prompt_chars, MAX_PROMPT_CHARS)
    if not prompt:
        errors["prompt"] = ["prompt is required."]
    elif len(prompt) > limit:
        errors["prompt"] = [f"prompt must be at most {limit} characters for this model."]
    elif job_type == "TEXT_TO_SPEECH" and not _speakable(prompt):
        errors["prompt"] = ["prompt has nothing to speak: send words, numbers or symbols, not only punctuation."]
    if "messages" in data:
        errors["messages"] = [f"{job_type} does not take messages; send a prompt."]
    extra = {"prompt": prompt}
    if data.get("negativePrompt"):
        if job_type not in VISUAL:
            errors["negativePrompt"] = [f"{job_type} does not take negativePrompt."]
        extra["negativePrompt"] = data["negativePrompt"]
    return extra


def _speakable(text: str) -> bool:
    """Whether the text has a letter, digit or symbol to say: punctuation, marks or invisible characters alone
    came out as a charged second of silence."""
    return any(unicodedata.category(char)[0] in "LN" or unicodedata.category(char) == "So" for char in text)


def _chat_input(model: AiModel, data: dict, errors: dict) -> dict:
    prompt = data.get("prompt")
    if prompt and data.get("messages"):
        errors["prompt"] = ["Send either a prompt or messages for CHAT, not both."]
    if data.get("negativePrompt"):
        errors["negativePrompt"] = ["CHAT does not take negativePrompt."]
    if prompt and len(prompt) > MAX_PROMPT_CHARS:
        errors["prompt"] = [
            f"prompt must be at most {MAX_PROMPT_CHARS} characters; send a longer conversation as messages "
            f"(up to {model.max_prompt_chars} characters in all for this model)."
        ]
    messages = data.get("messages") or ([{"role": "user", "content": prompt}] if prompt else [])
    if not messages:
        errors["messages"] = ["Send messages (or a prompt) for CHAT."]
    for message in messages:
        if message.get("role") not in ("system", "user", "assistant") or not isinstance(message.get("content"), str):
            errors["messages"] = ["Each message needs a role (system, user, assistant) and string content."]
            break
        if "\x00" in message["content"]:
            errors["messages"] = ["Null characters are not allowed in message content."]
            break
    # Only the role and the content are kept: they are what is priced, stored and sent upstream.
    messages = [{"role": m.get("role"), "content": m.get("content")} for m in messages]
    if "messages" not in errors and messages and not any(str(m["content"]).strip() for m in messages):
        errors["messages"] = ["The messages hold no text: give at least one message some content."]
    if sum(len(str(m.get("content", ""))) for m in messages) > model.max_prompt_chars:
        errors["messages"] = [f"The conversation must be at most {model.max_prompt_chars} characters."]
    return {"messages": messages}


def _image_input(job_type: str, data: dict, has_upload: bool, errors: dict) -> str | None:
    url = data.get("imageUrl")
    if job_type in NEEDS_IMAGE and not (url or has_upload):
        errors["image"] = [f"{job_type} needs an input image: upload an image or give an imageUrl."]
    if job_type not in NEEDS_IMAGE and (url or has_upload):
        errors["imageUrl" if url else "image"] = [f"{job_type} does not take an input image."]
    if url and has_upload:
        errors["imageUrl"] = ["Send either an image upload or an imageUrl, not both."]
    return url


def _webhook_url(data: dict, errors: dict) -> str | None:
    url = data.get("webhookUrl") or None
    if url:
        try:
            check_url(url, label="The webhook URL")  # refused when set, and checked again at every delivery
        except OutboundError as error:
            errors["webhookUrl"] = [str(error)]
    return url


def _in_model_terms(error: ValidationFailed, data: dict) -> ValidationFailed:
    """A number past a global bound ("at most 600") is named with the model's own range instead, when the
    model is known: that is the range the caller can use."""
    model = catalog_get(str(data.get("model", "")))
    if model is None or not error.details:
        return error
    details = dict(error.details)
    for name in MODEL_PARAMS:
        value, spec = data.get(name), model.params.get(name)
        if name in details and spec and isinstance(value, int | float) and not isinstance(value, bool):
            details[name] = [_check_range(value, spec, model) or details[name][0]]
    return ValidationFailed(details=details)


def validate_generate(data: dict, *, has_upload: bool = False, json_types: bool = False) -> ValidRequest:
    shaped, errors = _shape(data, json_types=json_types)
    if errors:  # one 422 names every bad setting: the model's range checks of the fields that passed too
        details = {**_model_param_errors(shaped, has_upload), **errors}
        raise _in_model_terms(ValidationFailed(details=details), data)
    return _checked(shaped, has_upload)


def _model_param_errors(shaped: dict, has_upload: bool) -> dict[str, list[str]]:
    if "model" not in shaped or "type" not in shaped:
        return {}
    try:
        _checked(shaped, has_upload)
    except ValidationFailed as error:
        return {name: texts for name, texts in (error.details or {}).items() if name in MODEL_PARAMS}
    return {}


def _checked(shaped: dict, has_upload: bool) -> ValidRequest:
    """The catalog's checks of a body whose fields each have their shape."""
    model = catalog_get(shaped["model"])
    if model is None:
        raise ValidationFailed(details={"model": [f"{catalog_absence(shaped['model'])} See GET /api/v1/models."]})
    job_type = shaped["type"]
    if job_type not in model.types:
        makes = _listing(_type_name(t) for t in model.types)
        raise ValidationFailed(details={"type": [f"{model.name} makes {makes}, not {_type_name(job_type)}."]})
    errors: dict[str, list[str]] = {}
    webhook_url = _webhook_url(shaped, errors)
    params = {**_prompt(model, job_type, shaped, errors), **_model_params(model, shaped, errors)}
    if "seed" in shaped and job_type == "CHAT":
        errors["seed"] = ["CHAT does not take seed."]
    elif "seed" in shaped:
        params["seed"] = shaped["seed"]
    image_url = _image_input(job_type, shaped, has_upload, errors)
    if errors:
        raise ValidationFailed(details=errors)
    return ValidRequest(model, job_type, params, price_for(model, params), image_url, webhook_url)


def require_image(content: bytes, field: str) -> None:
    try:
        check_image(content, label="The file")
    except NotAnImage as error:
        raise ValidationFailed(details={field: [str(error)]}) from None


def upload_read(upload) -> bytes | None:
    """An uploaded input image: at most 5 MB and decodable, else 413 / 422."""
    if upload is None:
        return None
    limit = settings.FLIXLY_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise PayloadTooLarge(f"The image is over the {limit // (1024 * 1024)} MB limit.")
    content = upload.read()
    require_image(content, "image")
    return content
