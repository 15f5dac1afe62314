"""Keyset (cursor) pagination, newest first: {"data": [...], "nextCursor": "..." | null}.

A cursor encodes the (created_at, id) of the last row served, so pages stay stable while new rows
arrive and deep pages cost the same as the first (an index range scan, no OFFSET).
"""

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signing import BadSignature, Signer
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from flixly_site.db import custom_plans
from flixly_site.errors import ValidationFailed

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def in_utc(moment: datetime) -> datetime | None:
    """`moment` in UTC (naive means UTC), or None when that falls outside the years 1-9999: the database
    adapters would fail on it (e.g. 0001-01-01T00:00+05:00)."""
    try:
        return (moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)).astimezone(UTC)
    except OverflowError:
        return None


def iso_utc(moment: datetime | None) -> str | None:
    """The API's timestamp form: ISO 8601 in UTC, to the second, with a Z (`2026-03-16T12:00:00Z`)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def _signer(model: type[Model]) -> Signer:
    # Signed per list: a cursor made up, edited or taken from another list is refused before it is read.
    return Signer(salt=f"flixly.cursor.{model._meta.label_lower}")


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed("The cursor is not valid.", details={"cursor": ["Not a cursor from this API."]})


def _signed(signer: Signer, value: Any) -> str:
    """`value` as JSON in unpadded URL-safe base64, signed: a cursor pastes into a URL as it is."""
    return signer.sign(base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("="))


def _unsigned(signer: Signer, cursor: str) -> Any:
    """The JSON value a cursor of `signer` holds; BadSignature or ValueError for any other string."""
    payload = signer.unsign(cursor)
    return json.loads(base64.urlsafe_b64decode((payload + "=" * (-len(payload) % 4)).encode()))


def cursor_for(model: type[Model], moment: datetime, pk: Any) -> str:
    """The cursor that resumes a list of `model` after its row (moment, pk)."""
    return _signed(_signer(model), [moment.isoformat(), str(pk)])


def _decode(cursor: str, model: type[Model]) -> tuple[datetime, Any]:
    """The (time, primary key) a cursor of this list holds, checked as its own types: any other cursor is
    a 422, never a database error."""
    pk_field = model._meta.pk
    try:
        when, raw_pk = _unsigned(_signer(model), cursor)
        moment = in_utc(datetime.fromisoformat(when))
        if moment is None or not isinstance(raw_pk, str):  # cursor_for writes every key as a string
            raise ValueError("not a cursor")
        pk = pk_field.to_python(raw_pk)
        pk_field.run_validators(pk)  # integers within the column's range
    except (BadSignature, ValueError, TypeError, DjangoValidationError):
        raise _bad_cursor() from None
    return moment, pk


def sorted_page[T](
    items: Sequence[T], *, key: Callable[[T], list], cursor: str | None, limit: int, salt: str
) -> tuple[list[T], str | None]:
    """A page of `items` (in ascending `key` order, a list of JSON values) after the cursor's key: keyset
    paging of a list held in memory, so an item added or removed between pages moves no other."""
    signer = Signer(salt=f"flixly.cursor.{salt}")
    start = 0
    if cursor:
        try:
            after = _unsigned(signer, cursor)
        except (BadSignature, ValueError):
            raise _bad_cursor() from None
        start = next((index for index, item in enumerate(items) if key(item) > after), len(items))
    rows = list(items[start : start + limit])
    more = start + limit < len(items)
    return rows, _signed(signer, key(rows[-1])) if more else None


def page_parameters() -> list[OpenApiParameter]:
    """The query parameters of every paged list, for its OpenAPI operation."""
    return [
        OpenApiParameter("cursor", str, description="The previous page's nextCursor."),
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            description=f"Items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
        ),
    ]


def page_limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT):
        raise ValidationFailed(details={"limit": [f"Must be an integer from 1 to {MAX_LIMIT}."]})
    return int(raw)


def keyset_page(
    queryset: QuerySet, *, cursor: str | None, limit: int = DEFAULT_LIMIT, time_field: str = "created_at"
) -> tuple[list, str | None]:
    queryset = queryset.order_by(f"-{time_field}", "-pk")
    if cursor:
        when, pk = _decode(cursor, queryset.model)
        # The plain `<=` bound lets the database range-scan its (time, id) index; the OR picks the exact rows.
        queryset = queryset.filter(**{f"{time_field}__lte": when}).filter(
            Q(**{f"{time_field}__lt": when}) | Q(**{time_field: when, "pk__lt": pk})
        )
    with custom_plans():  # a list's filters may name a rare value: plan for it, not for a typical one
        rows = list(queryset[: limit + 1])
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = cursor_for(queryset.model, getattr(last, time_field), last.pk) if last else None
    return rows[:limit], next_cursor


def dashboard_page(request: HttpRequest, queryset: QuerySet, *, limit: int, rows_named: str) -> tuple[list, str | None]:
    """A dashboard list's page from its ?cursor= link; a link that no longer works (an old bookmark, a
    mangled address) shows the newest rows, and says so."""
    try:
        return keyset_page(queryset, cursor=request.GET.get("cursor") or None, limit=limit)
    except ValidationFailed:
        messages.info(request, f"That page link no longer works, so here are your newest {rows_named}.")
        return keyset_page(queryset, cursor=None, limit=limit)


def paginated_response(
    queryset: QuerySet, request: Request, serialize: Callable[[Any], dict], *, time_field: str = "created_at"
) -> Response:
    rows, next_cursor = keyset_page(
        queryset, cursor=request.query_params.get("cursor"), limit=page_limit(request), time_field=time_field
    )
    return Response({"data": [serialize(row) for row in rows], "nextCursor": next_cursor})
