"""Checks on the catalog data file (generation/catalog.json): shape, prices, parameters and routes.

Plain data tests: no database, no Django models. The pricing helper below is an independent
implementation of the bucket rules the API promises, so a typo in a price table shows up here.
"""

import itertools
import json
import math
import re
from pathlib import Path

import pytest

from generation.kinds import JOB_TYPES

CATALOG_PATH = Path(__file__).resolve().parents[2] / "generation" / "catalog.json"
CATALOG = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
MODELS = CATALOG["models"]
BY_ID = {model["id"]: model for model in MODELS}
MODEL_IDS = [model["id"] for model in MODELS]

MODEL_KEYS = {
    "id",
    "name",
    "vendor",
    "description",
    "types",
    "credits",
    "pricing",
    "params",
    "maxPromptChars",
    "route",
    "upstreamModel",
    "timeoutSeconds",
}
ROUTES = {"local", "openai_compatible", "replicate", "fal"}
RESOLUTIONS = ("480p", "720p", "1080p")

CATEGORY_OF_TYPE = {
    "TEXT_TO_IMAGE": "image",
    "IMAGE_TO_IMAGE": "image",
    "TEXT_TO_VIDEO": "video",
    "IMAGE_TO_VIDEO": "video",
    "REFERENCE_TO_VIDEO": "video",
    "TEXT_TO_SPEECH": "speech",
    "TEXT_TO_MUSIC": "music",
    "CHAT": "chat",
}
TIMEOUTS = {"image": 180, "video": 900, "speech": 120, "music": 300, "chat": 120}
PROMPT_LIMITS = {"image": 2000, "video": 2000, "speech": 10000, "music": 2000, "chat": 32000}
PRICING_KINDS = {
    "image": {"bySize"},
    "video": {"byResolution"},
    "speech": {"perThousandChars"},
    "music": {"byDuration"},
    "chat": set(),
}
PARAMS_BY_CATEGORY = {
    "image": {"width", "height", "steps", "style"},
    "video": {"duration", "resolution", "fps"},
    "speech": {"voice", "speed", "language"},
    "music": {"duration"},
    "chat": {"maxTokens"},
}
# The public API's outer bounds (docs/contract.md); a model may narrow them, never widen them.
API_BOUNDS = {"width": (256, 2048), "height": (256, 2048), "steps": (1, 50), "speed": (0.5, 2.0)}

REQUIRED_IDS = [
    "flux-dev",
    "flux-schnell",
    "flux-2-pro",
    "flux-2-dev",
    "flux-kontext-max",
    "flux-kontext-pro",
    "ideogram-v3",
    "grok-imagine",
    "nano-banana",
    "nano-banana-pro",
    "seedream-4",
    "imagen-4",
    "recraft-v3",
    "gpt-image-1",
    "seedance-2.0",
    "kling-3.0",
    "kling-2.6-pro",
    "veo-3.1",
    "veo-3.1-fast",
    "wan-2.6",
    "wan-2.7",
    "hailuo-02",
    "runway-gen-4",
    "pixverse-v5",
    "ltx-2",
    "gemini-3.1-flash-tts",
    "elevenlabs-v3",
    "kokoro",
    "fish-audio-s1",
    "openai-tts",
    "minimax-speech",
    "elevenlabs-music",
    "stable-audio-2.5",
    "lyria-2",
    "minimax-music",
    "gpt-5",
    "gpt-5-mini",
    "claude-sonnet-4.5",
    "gemini-3-pro",
    "llama-4-maverick",
    "deepseek-v3.2",
    "qwen3-235b",
    "mistral-large",
    "local-image",
    "local-image-edit",
    "local-video",
    "local-image-to-video",
    "local-speech",
    "local-music",
    "local-chat",
]

by_model = pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)


# ---------------------------------------------------------------- helpers


def category(model: dict) -> str:
    return CATEGORY_OF_TYPE[model["types"][0]]


def is_local(model: dict) -> bool:
    return model["route"] == "local"


def defaults(model: dict) -> dict:
    return {name: spec["default"] for name, spec in model["params"].items()}


def bucket(table: dict[str, int], amount: float) -> int | None:
    """The price of the smallest bucket whose limit covers amount; None when no bucket does."""
    covering = [int(limit) for limit in table if int(limit) >= amount]
    return table[str(min(covering))] if covering else None


def price(model: dict, prompt_chars: int = 100, **overrides) -> int | None:
    """What a request with the model's default params (plus overrides) costs, per the catalog's rule."""
    params = defaults(model) | overrides
    rule = model["pricing"]
    if not rule:
        return model["credits"]
    ((kind, spec),) = rule.items()
    if kind == "byResolution":
        return bucket(spec.get(params["resolution"], {}), params["duration"])
    if kind == "byDuration":
        return bucket(spec, params["duration"])
    if kind == "bySize":
        return bucket(spec, params["width"] * params["height"])
    if kind == "perThousandChars":
        return max(model["credits"], math.ceil(prompt_chars / 1000) * spec)
    raise AssertionError(f"unknown pricing rule {kind!r}")


def largest(spec: dict) -> float:
    return max(spec["allowed"]) if "allowed" in spec else spec["max"]


def choices(spec: dict) -> list:
    """Every value a client may send: the allowed list, or the two ends of a range."""
    return list(spec["allowed"]) if "allowed" in spec else [spec["min"], spec["max"]]


def tables(model: dict) -> list[dict[str, int]]:
    """Every seconds/pixels -> credits table in the model's pricing rule."""
    rule = model["pricing"]
    if "byResolution" in rule:
        return list(rule["byResolution"].values())
    if "byDuration" in rule:
        return [rule["byDuration"]]
    if "bySize" in rule:
        return [rule["bySize"]]
    return []


# ---------------------------------------------------------------- the file as a whole


def test_catalog_has_version_and_enough_models():
    assert CATALOG["version"] == 1
    assert set(CATALOG) == {"version", "models"}
    assert len(MODELS) >= 50


def test_ids_are_unique_and_well_formed():
    assert len(MODEL_IDS) == len(set(MODEL_IDS))
    for model_id in MODEL_IDS:
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?", model_id), model_id
        assert ".." not in model_id
        assert "--" not in model_id


def test_required_ids_are_present():
    missing = [model_id for model_id in REQUIRED_IDS if model_id not in BY_ID]
    assert missing == []


@pytest.mark.parametrize("job_type", JOB_TYPES)
def test_every_type_has_an_upstream_and_a_local_model(job_type):
    serving = [model for model in MODELS if job_type in model["types"]]
    assert any(not is_local(model) for model in serving), f"no upstream model for {job_type}"
    assert any(is_local(model) for model in serving), f"no local model for {job_type}"


def test_job_types_match_the_provider_contract():
    assert set(CATEGORY_OF_TYPE) == set(JOB_TYPES)


# ---------------------------------------------------------------- each model


@by_model
def test_model_has_exactly_the_documented_keys(model):
    assert set(model) == MODEL_KEYS


@by_model
def test_types_are_known_and_of_one_kind(model):
    types = model["types"]
    assert types
    assert len(types) == len(set(types))
    assert set(types) <= set(JOB_TYPES)
    assert len({CATEGORY_OF_TYPE[job_type] for job_type in types}) == 1


@by_model
def test_name_vendor_and_description_read_well(model):
    for field in ("name", "vendor", "description"):
        assert model[field] == model[field].strip()
        assert model[field]
    assert model["name"] != model["id"]
    description = model["description"]
    assert 20 <= len(description) <= 200
    assert description[0].isupper()
    assert description.endswith(".")
    assert ". " not in description, "the description should be one sentence"
    assert "  " not in description


@by_model
def test_credits_equal_the_price_of_the_default_request(model):
    assert isinstance(model["credits"], int)
    assert not isinstance(model["credits"], bool)
    assert model["credits"] > 0
    assert price(model) == model["credits"]


@by_model
def test_pricing_rule_fits_the_model_kind(model):
    rule = model["pricing"]
    assert isinstance(rule, dict)
    assert len(rule) <= 1
    assert set(rule) <= PRICING_KINDS[category(model)]
    if category(model) == "speech":
        assert rule, "speech is priced per started 1000 characters"


@by_model
def test_price_tables_hold_positive_integers_that_grow(model):
    for table in tables(model):
        assert table
        limits = sorted(table, key=int)
        assert all(limit.isdigit() and int(limit) > 0 for limit in limits)
        prices = [table[limit] for limit in limits]
        assert all(isinstance(value, int) and value > 0 for value in prices)
        assert prices == sorted(prices), "a longer or larger output never costs less"
    per_thousand = model["pricing"].get("perThousandChars")
    if per_thousand is not None:
        assert isinstance(per_thousand, int)
        assert 0 < per_thousand <= model["credits"], "the base price covers the first 1000 characters"


@by_model
def test_params_have_consistent_ranges_and_defaults(model):
    for name, spec in model["params"].items():
        assert "default" in spec, name
        if "allowed" in spec:
            assert set(spec) == {"allowed", "default"}, name
            assert spec["allowed"], name
            assert len(spec["allowed"]) == len(set(spec["allowed"])), name
            assert spec["default"] in spec["allowed"], name
        else:
            assert set(spec) == {"min", "max", "default"}, name
            assert spec["min"] <= spec["default"] <= spec["max"], name


@by_model
def test_params_are_the_ones_the_api_knows_for_the_kind(model):
    params = model["params"]
    assert set(params) <= PARAMS_BY_CATEGORY[category(model)]
    for name, (low, high) in API_BOUNDS.items():
        if name in params:
            assert all(low <= value <= high for value in choices(params[name])), name
    if "resolution" in params:
        assert set(params["resolution"]["allowed"]) <= set(RESOLUTIONS)
    if "duration" in params:
        assert all(value > 0 for value in choices(params["duration"]))
    if "maxTokens" in params:
        assert params["maxTokens"]["min"] >= 1
    if category(model) == "image":
        assert {"width", "height"} <= set(params)
    if category(model) == "video":
        assert {"duration", "resolution"} <= set(params)


@by_model
def test_every_allowed_video_choice_has_a_price(model):
    rule = model["pricing"].get("byResolution")
    if rule is None:
        return
    params = model["params"]
    assert set(rule) == set(params["resolution"]["allowed"]), "one table per allowed resolution"
    for resolution in params["resolution"]["allowed"]:
        for seconds in choices(params["duration"]):
            assert price(model, resolution=resolution, duration=seconds) is not None, (resolution, seconds)
    ordered = [resolution for resolution in RESOLUTIONS if resolution in rule]
    for lower, higher in itertools.pairwise(ordered):
        for seconds in choices(params["duration"]):
            assert price(model, resolution=higher, duration=seconds) > price(
                model, resolution=lower, duration=seconds
            ), (lower, higher, seconds)


@by_model
def test_every_allowed_music_duration_has_a_price(model):
    rule = model["pricing"].get("byDuration")
    if rule is None:
        return
    assert "duration" in model["params"]
    for seconds in choices(model["params"]["duration"]):
        assert price(model, duration=seconds) is not None, seconds


@by_model
def test_image_size_buckets_cover_the_largest_allowed_image(model):
    rule = model["pricing"].get("bySize")
    if rule is None:
        return
    params = model["params"]
    biggest = largest(params["width"]) * largest(params["height"])
    assert max(int(limit) for limit in rule) >= biggest
    assert price(model, width=largest(params["width"]), height=largest(params["height"])) is not None


@by_model
def test_route_and_upstream_model_are_valid(model):
    route, upstream = model["route"], model["upstreamModel"]
    assert route in ROUTES
    assert upstream
    assert upstream == upstream.strip()
    assert not re.search(r"\s", upstream)
    assert is_local(model) == model["id"].startswith("local-")
    if route == "local":
        assert upstream == model["id"]
    elif route == "replicate":
        assert re.fullmatch(r"[a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_.-]*", upstream), upstream
    elif route == "fal":
        assert re.fullmatch(r"[a-z0-9][a-z0-9_.-]*(?:/[a-z0-9][a-z0-9_.-]*)+", upstream), upstream


@by_model
def test_timeout_and_prompt_limit_match_the_kind(model):
    assert isinstance(model["timeoutSeconds"], int)
    assert model["timeoutSeconds"] > 0
    assert model["timeoutSeconds"] == TIMEOUTS[category(model)]
    assert model["maxPromptChars"] == PROMPT_LIMITS[category(model)]


@pytest.mark.parametrize("model", [model for model in MODELS if is_local(model)], ids=lambda model: model["id"])
def test_local_models_are_cheap(model):
    assert 1 <= model["credits"] <= 3
    for table in tables(model):
        assert max(table.values()) <= 3
    assert model["pricing"].get("perThousandChars", 1) <= 3


# ---------------------------------------------------------------- published prices and limits


@pytest.mark.parametrize(
    ("model_id", "price_720p", "max_seconds"),
    [("seedance-2.0", 12, 10), ("kling-3.0", 15, 8), ("veo-3.1", 18, 12)],
)
def test_published_video_prices_and_lengths(model_id, price_720p, max_seconds):
    model = BY_ID[model_id]
    params = model["params"]
    assert params["resolution"]["default"] == "720p"
    assert model["credits"] == price_720p
    assert price(model, resolution="720p") == price_720p
    assert price(model, resolution="1080p") > price_720p
    assert largest(params["duration"]) == max_seconds


def test_the_guide_example_kling_4_second_720p_clip_costs_15():
    model = BY_ID["kling-3.0"]
    duration = model["params"]["duration"]
    assert duration["min"] <= 4 <= duration["max"]
    assert price(model, duration=4, resolution="720p") == 15


def test_wan_27_supports_1080p_at_24_fps():
    params = BY_ID["wan-2.7"]["params"]
    assert "1080p" in params["resolution"]["allowed"]
    assert 24 in params["fps"]["allowed"]


def test_speech_is_charged_per_started_thousand_characters():
    model = BY_ID["elevenlabs-v3"]
    per_thousand = model["pricing"]["perThousandChars"]
    assert price(model, prompt_chars=1) == model["credits"]
    assert price(model, prompt_chars=10_000) == max(model["credits"], 10 * per_thousand)
    assert price(model, prompt_chars=9_001) == price(model, prompt_chars=10_000)


def test_bucket_rule_pays_the_smallest_covering_bucket():
    table = {"5": 12, "10": 22}
    assert bucket(table, 3) == 12
    assert bucket(table, 5) == 12
    assert bucket(table, 6) == 22
    assert bucket(table, 10) == 22
    assert bucket(table, 11) is None


@pytest.mark.parametrize(
    ("premium", "cheaper"),
    [
        ("flux-dev", "flux-schnell"),
        ("flux-2-pro", "flux-2-dev"),
        ("flux-kontext-max", "flux-kontext-pro"),
        ("nano-banana-pro", "nano-banana"),
        ("imagen-4-ultra", "imagen-4"),
        ("gpt-image-1", "gpt-image-1-mini"),
        ("seedance-2.0", "seedance-2.0-fast"),
        ("veo-3.1", "veo-3.1-fast"),
        ("veo-3.1", "seedance-2.0"),
        ("kling-3.0", "seedance-2.0"),
        ("sora-2-pro", "sora-2"),
        ("elevenlabs-v3", "elevenlabs-turbo-v2.5"),
        ("elevenlabs-v3", "kokoro"),
        ("gpt-5", "gpt-5-mini"),
        ("claude-sonnet-4.5", "claude-haiku-4.5"),
        ("claude-opus-4.5", "claude-sonnet-4.5"),
    ],
)
def test_premium_models_cost_more_than_fast_ones(premium, cheaper):
    assert BY_ID[premium]["credits"] > BY_ID[cheaper]["credits"]


@pytest.mark.parametrize("category_name", sorted(TIMEOUTS))
def test_local_models_are_the_cheapest_of_their_kind(category_name):
    kind = [model for model in MODELS if category(model) == category_name]
    local = min(model["credits"] for model in kind if is_local(model))
    assert local <= min(model["credits"] for model in kind if not is_local(model))


def test_every_job_types_ledger_category_is_one_billing_reports():
    from billing.selectors import CATEGORIES
    from generation.kinds import CATEGORY

    assert set(CATEGORY.values()) == set(CATEGORIES)
