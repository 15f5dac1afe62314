"""A 422 for every way a request can break a model's rules, generated from the catalog itself."""

import json
from http import HTTPStatus
from pathlib import Path

import pytest

from generation.kinds import JOB_TYPES

pytestmark = pytest.mark.django_db
MODELS = json.loads(Path("generation/catalog.json").read_text())["models"]


def base_body(model: dict) -> dict:
    return {"model": model["id"], "type": model["types"][0], "prompt": "a quiet harbour at dawn"}


def bad_values(model: dict):
    for name, spec in model["params"].items():
        if "allowed" in spec:
            wrong = "nonsense" if isinstance(spec["allowed"][0], str) else max(spec["allowed"]) + 1
            yield pytest.param(model, name, wrong, id=f"{model['id']}-{name}-not-allowed")
        elif "max" in spec:
            yield pytest.param(model, name, spec["max"] + 1, id=f"{model['id']}-{name}-over-max")


def wrong_types(model: dict):
    missing = [t for t in JOB_TYPES if t not in model["types"]]
    if missing:
        yield pytest.param(model, missing[0], id=f"{model['id']}-{missing[0]}")


@pytest.mark.parametrize(("model", "field", "value"), [case for m in MODELS for case in bad_values(m)])
def test_a_value_outside_the_models_range_is_a_422_naming_it(api, model, field, value):
    body = {**base_body(model), field: value}
    response = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert field in response.json()["error"]["details"]


@pytest.mark.parametrize(("model", "job_type"), [case for m in MODELS for case in wrong_types(m)])
def test_a_type_the_model_does_not_support_is_a_422(api, model, job_type):
    body = {**base_body(model), "type": job_type}
    response = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "type" in response.json()["error"]["details"]


TEXT_ONLY = [m for m in MODELS if m["types"][0] not in ("IMAGE_TO_IMAGE", "IMAGE_TO_VIDEO", "REFERENCE_TO_VIDEO")]


@pytest.mark.parametrize("model", TEXT_ONLY, ids=[m["id"] for m in TEXT_ONLY])
def test_the_default_request_quotes_the_models_base_price(api, model):
    body = base_body(model)
    response = api.post("/api/v1/generate?dryRun=true", body, content_type="application/json")
    assert response.status_code == HTTPStatus.OK, response.json()
    assert response.json()["data"]["creditsCharged"] == model["credits"]
