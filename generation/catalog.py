"""The model catalog: loaded from catalog.json into AiModel rows, read through a short in-process cache."""

import json
import time
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.module_loading import import_string

from flixly_site.errors import NotFound
from generation.models import AiModel, Route
from generation.pricing import catalog_problems
from generation.providers.base import Provider
from generation.providers.fal import FalProvider
from generation.providers.local import LocalProvider
from generation.providers.openai_compatible import OpenAICompatibleProvider
from generation.providers.replicate import ReplicateProvider

CATALOG_FILE = Path(__file__).with_name("catalog.json")
CACHE_SECONDS = 30  # staff edits reach every process within this
PROVIDERS: dict[str, type[Provider]] = {
    Route.LOCAL: LocalProvider,
    Route.OPENAI_COMPATIBLE: OpenAICompatibleProvider,
    Route.REPLICATE: ReplicateProvider,
    Route.FAL: FalProvider,
}
_cache: dict[str, object] = {"at": 0.0, "models": {}}


def catalog_sync(*, path: Path = CATALOG_FILE) -> Counter[str]:
    """Create or update every model in the data file; staff's `enabled` choice is kept, and so is every
    setting of a model staff edited (`staff_edited`). Idempotent. Counts the models "created", "updated",
    "unchanged" and "kept" (staff edited)."""
    entries = json.loads(path.read_text())["models"]
    counts: Counter[str] = Counter()
    with transaction.atomic():
        existing = AiModel.objects.in_bulk([entry["id"] for entry in entries])
        for order, entry in enumerate(entries):
            fields = _fields(entry, order)
            if problems := _entry_problems(AiModel(id=entry["id"], **fields)):
                raise ValueError(f"{path.name}: {entry['id']}: {problems}")
            counts[_sync_one(existing.get(entry["id"]), entry["id"], fields)] += 1
    catalog_forget()
    return counts


def _sync_one(model: AiModel | None, model_id: str, fields: dict) -> str:
    """Write one entry only where it changes the row: updated_at then tells staff when a model really changed."""
    if model is None:
        AiModel.objects.create(id=model_id, **fields)
        return "created"
    if model.staff_edited:
        return "kept"
    changed = [name for name, value in fields.items() if getattr(model, name) != value]
    if not changed:
        return "unchanged"
    for name in changed:
        setattr(model, name, fields[name])
    model.save(update_fields=[*changed, "updated_at"])
    return "updated"


def _entry_problems(model: AiModel) -> dict[str, list[str]]:
    """What the admin would refuse in this entry: its field rules (route, time limit) and the pricing checks."""
    try:
        model.clean_fields()
    except ValidationError as error:
        return error.message_dict
    return catalog_problems(model)


def _fields(entry: dict, order: int) -> dict:
    return {
        "name": entry["name"],
        "vendor": entry.get("vendor", ""),
        "description": entry.get("description", ""),
        "types": entry["types"],
        "credits": entry["credits"],
        "pricing": entry.get("pricing", {}),
        "params": entry.get("params", {}),
        "max_prompt_chars": entry.get("maxPromptChars", 2000),
        "route": entry["route"],
        "upstream_model": entry["upstreamModel"],
        "timeout_seconds": entry.get("timeoutSeconds", 300),
        "sort_order": order,
    }


def catalog_forget() -> None:
    _cache["at"] = 0.0


def catalog_models() -> dict[str, AiModel]:
    if time.monotonic() - _cache["at"] > CACHE_SECONDS:
        _cache["models"] = {m.id: m for m in AiModel.objects.filter(enabled=True)}
        _cache["at"] = time.monotonic()
    return _cache["models"]


def catalog_every_model() -> dict[str, AiModel]:
    """Every model, disabled ones too: a user's older jobs may name one."""
    return {m.id: m for m in AiModel.objects.order_by("name")}


def catalog_get(model_id: str) -> AiModel | None:
    return catalog_models().get(model_id)


def catalog_get_or_404(model_id: str, *, listing: str) -> AiModel:
    """The catalog's model, or a 404 that points at the `listing` of them all."""
    model = catalog_get(model_id)
    if model is None:
        raise NotFound(f"{catalog_absence(model_id)} See GET {listing}.")
    return model


def catalog_absence(model_id: str) -> str:
    """Why the catalog has no `model_id`, for the user: staff disabled it, or there is no such model."""
    if _could_name_a_model(model_id) and AiModel.objects.filter(id=model_id).exists():
        return f"Model '{model_id}' is disabled on this server."
    return f"Unknown model '{model_id}'."


def _could_name_a_model(model_id: str) -> bool:
    # A NUL, which PostgreSQL's text cannot hold, or an id longer than the column names no model: not a query.
    return "\x00" not in model_id and len(model_id) <= AiModel._meta.get_field("id").max_length


def catalog_unknown_ids(ids: list[str]) -> list[str]:
    """The ids no catalog model has, enabled or not (a key's allowlist may name a model staff disabled)."""
    known = set(AiModel.objects.filter(id__in=ids).values_list("id", flat=True))
    return [model_id for model_id in ids if model_id not in known]


def route_for(model: AiModel, *, is_test: bool) -> str | None:
    """Where a job on this model runs now, or None when it cannot run on this server."""
    if is_test or model.route == Route.LOCAL:
        return Route.LOCAL
    if _provider_class(model.route).is_configured():
        return model.route
    return Route.LOCAL if settings.FLIXLY_LOCAL_FALLBACK else None


def _provider_class(route: str) -> type[Provider]:
    if route in PROVIDERS:
        return PROVIDERS[route]
    # Operators plug in their own upstreams: FLIXLY_EXTRA_PROVIDERS = {"route": "dotted.path.Class"}.
    return import_string(settings.FLIXLY_EXTRA_PROVIDERS[route])


def provider_for(route: str) -> Provider:
    return _provider_class(route)()
