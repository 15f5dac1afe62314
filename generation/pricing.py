"""Prices from the catalog's rules. Credits are integers; every rule is documented in catalog.json's models."""

import itertools
import math
from typing import Any

from billing.services import MAX_CREDITS_PER_MOVEMENT
from generation.kinds import JOB_TYPES
from generation.models import AiModel

PRICE_RANGE = f"0 to {MAX_CREDITS_PER_MOVEMENT:,}"
RULES = ("byResolution", "byDuration", "bySize", "perThousandChars")


def _is_price(value: Any) -> bool:
    # Credits are whole; 0 is a free tier; no debit takes more than MAX_CREDITS_PER_MOVEMENT.
    return type(value) is int and 0 <= value <= MAX_CREDITS_PER_MOVEMENT


def _is_bound(key: Any) -> bool:
    try:
        return float(key) >= 0
    except (TypeError, ValueError):
        return False


def _table_problems(table: Any, label: str) -> list[str]:
    if not isinstance(table, dict) or not table:
        return [f"{label} must be an object of upper bounds to prices."]
    if not all(_is_bound(bound) for bound in table):
        return [f"{label}: every bound must be a number."]
    if not all(_is_price(price) for price in table.values()):
        return [f"{label}: every price must be a whole number of credits, {PRICE_RANGE}."]
    return []


def _pricing_problems(rules: Any) -> list[str]:
    """What is wrong with a model's pricing rules (empty: nothing); price_for reads exactly these shapes."""
    if not isinstance(rules, dict):
        return ["Pricing must be an object."]
    if unknown := sorted(set(rules) - set(RULES)):
        return [f"Unknown pricing rule {', '.join(unknown)}: use one of {', '.join(RULES)}."]
    if len(rules) > 1:
        return ["Use one pricing rule."]
    if "byResolution" in rules:
        tables = rules["byResolution"]
        if not isinstance(tables, dict) or not tables:
            return ["byResolution must be an object of resolutions to duration tables."]
        return [problem for name, table in tables.items() for problem in _table_problems(table, f"byResolution.{name}")]
    if "perThousandChars" in rules:
        return (
            []
            if _is_price(rules["perThousandChars"])
            else [f"perThousandChars must be a whole number of credits, {PRICE_RANGE}."]
        )
    return [problem for name, table in rules.items() for problem in _table_problems(table, name)]


def _param_problems(name: str, spec: Any) -> list[str]:
    if not isinstance(spec, dict):
        return [f"{name} must be an object (min/max or allowed, and default)."]
    if "allowed" in spec:
        allowed = spec["allowed"]
        if not isinstance(allowed, list) or not allowed:
            return [f"{name}.allowed must be a list of at least one value."]
        fits = "default" not in spec or spec["default"] in allowed
        return [] if fits else [f"{name}.default must be one of its allowed values."]
    bounds = {key: spec[key] for key in ("min", "max", "default") if key in spec}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bounds.values()):
        return [f"{name}: min, max and default must be numbers."]
    low, high = bounds.get("min", -math.inf), bounds.get("max", math.inf)
    if low > high or not low <= bounds.get("default", low if low > -math.inf else high) <= high:
        return [f"{name} needs min <= default <= max."]
    return []


def _params_problems(params: Any) -> list[str]:
    """What is wrong with a model's parameter ranges (empty: nothing): each must let some request through."""
    if not isinstance(params, dict):
        return ["Params must be an object."]
    return [problem for name, spec in params.items() for problem in _param_problems(name, spec)]


PRICED_BY = ("resolution", "duration", "width", "height")  # the parameters price_for reads


def _edges(spec: dict) -> list[Any]:
    """The values of a parameter a request can end up with that a price table must cover (None: left out)."""
    values = [*spec.get("allowed", []), *(spec[key] for key in ("min", "max", "default") if key in spec)]
    return values if "default" in spec else [*values, None]


def _unpriced(model: AiModel) -> list[str]:
    """The first request at the edges of the model's parameters that price_for cannot price, if any."""
    specs = [[(name, value) for value in _edges(model.params[name])] for name in PRICED_BY if name in model.params]
    for combination in itertools.product(*specs):
        params = {name: value for name, value in combination if value is not None}
        try:
            price_for(model, params)
        except (ValueError, TypeError, KeyError, AttributeError):
            return [f"No price for a request with {params or 'the defaults'}: the pricing must cover every value."]
    return []


def catalog_problems(model: AiModel) -> dict[str, list[str]]:
    """What would make a request on this model fail to be priced, by field (empty: nothing). Staff's edits in
    the admin and catalog.json's entries are both checked with it."""
    problems = {
        "types": _types_problems(model.types),
        "pricing": _pricing_problems(model.pricing),
        "params": _params_problems(model.params),
    }
    if not any(problems.values()):
        problems["pricing"] = _unpriced(model)
    if not any(problems.values()):
        problems["credits"] = _credits_problems(model)
    return {field: found for field, found in problems.items() if found}


def _types_problems(types: Any) -> list[str]:
    if not isinstance(types, list) or not types:
        return ["Types must be a list of at least one job type."]
    if unknown := [str(name) for name in types if name not in JOB_TYPES]:
        return [f"Unknown job type {', '.join(unknown)}: use {', '.join(JOB_TYPES)}."]
    return []


def _credits_problems(model: AiModel) -> list[str]:
    """Credits is the price the catalog shows: with a price table, the table's price at the defaults."""
    if not _is_price(model.credits):
        return [f"Credits must be a whole number of credits, {PRICE_RANGE}."]
    defaults = {name: spec["default"] for name, spec in model.params.items() if "default" in spec}
    price = price_for(model, defaults)
    if price == model.credits:
        return []
    return [f"The pricing table charges {price} at the default settings: set Credits to {price}, or change the table."]


def price_range(model: AiModel) -> tuple[int, int | None]:
    """The least and the most a job on this model can cost (None: no upper bound, priced by length)."""
    rules = model.pricing or {}
    if "perThousandChars" in rules:
        return model.credits, None
    tables = rules.get("byResolution", {}).values() if "byResolution" in rules else rules.values()
    prices = [int(price) for table in tables for price in table.values()]
    return (min(prices), max(prices)) if prices else (model.credits, model.credits)


def _bucket(table: dict[str, int], value: float) -> int | None:
    """The price of the smallest bucket whose bound is >= value."""
    for bound in sorted(table, key=float):
        if value <= float(bound):
            return int(table[bound])
    return None


def price_for(model: AiModel, params: dict) -> int:
    rules = model.pricing or {}
    if "byResolution" in rules:
        table = rules["byResolution"].get(params.get("resolution"), {})
        price = _bucket(table, params.get("duration", 0))
    elif "byDuration" in rules:
        price = _bucket(rules["byDuration"], params.get("duration", 0))
    elif "bySize" in rules:
        price = _bucket(rules["bySize"], params.get("width", 0) * params.get("height", 0))
    elif "perThousandChars" in rules:
        started = math.ceil(len(params.get("prompt", "")) / 1000)
        price = max(model.credits, started * int(rules["perThousandChars"]))
    else:
        price = model.credits
    if price is None:
        raise ValueError(f"{model.id} has no price for {params}")  # validation keeps params inside the tables
    return price
