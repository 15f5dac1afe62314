"""Request parsing and content negotiation for every API view."""

import codecs
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework import negotiation, parsers, serializers
from rest_framework.exceptions import ParseError
from rest_framework.fields import empty
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils import json


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, reading the body whole (DRF's incremental decoder cost as much as the parse),
    with a body nested too deep for Python's parser refused like any malformed body (the standard
    library raises RecursionError there, which would otherwise be a 500)."""

    def parse(self, stream, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        parse_constant = json.strict_constant if self.strict else None  # as DRF's: no NaN or Infinity
        try:
            text = stream.read().decode(encoding)
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        except ValueError as error:  # also a body that is not in its declared encoding
            raise ParseError(f"JSON parse error - {error}") from None
        if (not _is_utf_8(encoding) or UNPAIRED_ESCAPE.search(text)) and _has_lone_surrogate(data):
            raise ParseError(
                "JSON parse error - the body holds half of a surrogate pair (\\ud800, say), which is no character."
            )
        return data


# JSON may escape half of a UTF-16 surrogate pair on its own ("\ud800"); Python parses it to a str that
# cannot be encoded, and PostgreSQL refuses it in a JSON column. In UTF-8 only such an escape brings one in
# (an escaped pair, as json.dumps writes an emoji, is one character); another charset (UTF-7) may too.
UNPAIRED_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]"
)


def _is_utf_8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "ascii")  # get_encoding has checked it is a text codec


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False, allow_nan=True).encode()
    except UnicodeEncodeError:
        return True
    return False


class JSONFirstNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's negotiation, with the common case answered before parsing any header: a request that sends
    no Accept header, or accepts anything or JSON, gets the first renderer (JSON) when that is JSON."""

    FAST_ACCEPTS = frozenset({"*/*", "application/json"})

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        json_first = bool(renderers) and renderers[0].media_type == "application/json"
        plain = not format_suffix and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        if json_first and plain and request.headers.get("Accept", "*/*") in self.FAST_ACCEPTS:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)

    def filter_renderers(self, renderers: list[BaseRenderer], format: str) -> list[BaseRenderer]:
        # DRF answers a ?format= that names none of the view's renderers with a 404, as if the resource did
        # not exist; here it picks none, and the view judges `format` as it judges any query parameter.
        return [renderer for renderer in renderers if renderer.format == format] or renderers


class CsvRenderer(BaseRenderer):
    """Lets a client that accepts only CSV (`Accept: text/csv`, as the schema names the export's body) reach
    a view that streams CSV itself; the view's errors stay JSON (csv_errors_as_json)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None):
        raise TypeError("A CSV view streams its own body; csv_errors_as_json renders its errors.")


def csv_errors_as_json(request: Request, response: Any) -> None:
    """An error answered to a client that asked for CSV is in the contract's JSON shape all the same."""
    # No renderer was accepted when negotiation itself failed (406): DRF's own fallback renders that one.
    accepted = getattr(request, "accepted_renderer", None)
    if isinstance(response, Response) and isinstance(accepted, CsvRenderer):
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type


MAX_JSON_INTEGER = 2**63  # past any column and any float conversion we make

JSON_TYPE_NAMES = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "an object",
}


def is_json_object(data: Any) -> bool:
    """A parsed JSON object, not a form's or multipart body's QueryDict (whose fields are all text)."""
    return isinstance(data, dict) and not hasattr(data, "getlist")


def json_type_error(field: serializers.Field, value: Any) -> str | None:
    """DRF turns 123 into "123" and "512" into 512; a JSON body must send each field as its own type."""
    if value is None:
        return None  # DRF's own checks name these (required, allow_null)
    if isinstance(field, serializers.ListField):
        if not isinstance(value, list):
            return f"Must be a list, not {JSON_TYPE_NAMES.get(type(value), 'that')}."
        return next((error for item in value if (error := json_type_error(field.child, item))), None)
    if isinstance(field, serializers.DictField):
        return None if isinstance(value, dict) else "Must be an object."
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and isinstance(value, int) and abs(value) > MAX_JSON_INTEGER:
        return "Out of range."  # DRF would overflow converting it
    if isinstance(field, serializers.IntegerField):  # 512.0 is fine, as DRF takes it
        ok, kind = is_number and (isinstance(value, int) or value.is_integer()), "an integer"
    elif isinstance(field, serializers.FloatField):
        ok, kind = is_number, "a number"
    elif isinstance(field, serializers.CharField | serializers.ChoiceField):
        ok, kind = isinstance(value, str), "a string"
    else:
        return None  # other field types check their own input
    return None if ok else f"Must be {kind}, not {JSON_TYPE_NAMES.get(type(value), 'that')}."


MAX_NAMED_UNKNOWN = 10  # a body of a million unknown keys is answered in a few lines, not echoed whole
MAX_NAME_CHARS = 64


def unknown_fields(
    names: Iterable[str], *, noun: str = "field", rest: str = "body", hint: str = ""
) -> dict[str, list[str]]:
    """The 422 details naming a body's unknown fields (or a query's unknown parameters): the first few, each
    shortened, and how many more under `rest`."""
    unknown = sorted(names)
    shown = [name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS] + "…" for name in unknown]
    details = {name: [f"Unknown {noun} '{name}'.{hint}"] for name in shown[:MAX_NAMED_UNKNOWN]}
    if unnamed := len(unknown) - len(details):  # two long names cut to the same key count as one named
        details[rest] = [f"And {unnamed} more unknown {noun}s."]
    return details


class StrictJSONSerializer(serializers.Serializer):
    """An input serializer for JSON bodies: every field known, each sent as its own type."""

    def run_validation(self, data: Any = empty) -> Any:
        # A JSON null, array, string or number, named as /generate names it (DRF: a non-field error).
        if data is not empty and not isinstance(data, Mapping):
            raise serializers.ValidationError({"body": ["Expected a JSON object."]})
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> Any:
        if is_json_object(data):
            errors = unknown_fields(name for name in data if name not in self.fields)
            for name, field in self.fields.items():
                if name in data and (wrong := json_type_error(field, data[name])):
                    errors[name] = [wrong]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def parse_uuid(value: object) -> uuid.UUID | None:
    """An id from a URL, a query or a search box as a UUID; None when it is not one."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None
