"""Prices from the catalog's rules. Credits are integers; every rule is documented in catalog.json's models."""

import math

from generation.models import AiModel


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
