"""The OpenAPI document describes the answers as they are: the envelope, the error shape, the headers."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        return Client().get("/api/v1/schema", HTTP_ACCEPT="application/json").json()


def body(schema: dict, path: str, method: str, status: str) -> dict:
    return schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]


def test_lists_come_in_the_envelope_with_their_cursor(schema):
    jobs = body(schema, "/api/v1/jobs", "get", "200")
    assert jobs["required"] == ["data", "nextCursor"] and jobs["properties"]["data"]["type"] == "array"


def test_single_objects_come_in_the_envelope(schema):
    job = body(schema, "/api/v1/jobs/{jobId}", "get", "200")
    assert job["required"] == ["data"] and job["properties"]["data"] == {"$ref": "#/components/schemas/JobSchema"}


def test_every_operation_documents_the_contracts_error_shape(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            error = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}, (method, path)
    assert schema["components"]["schemas"]["Error"]["properties"]["error"]["required"] == ["code", "status", "message"]


def test_revoking_answers_200_with_what_was_revoked(schema):
    for path in ("/api/v1/keys/{id}", "/api/v1/webhook"):
        assert set(schema["paths"][path]["delete"]["responses"]) == {"200", "default"}
        assert body(schema, path, "delete", "200")["required"] == ["data"]


def test_generate_documents_its_headers_and_its_two_answers(schema):
    generate = schema["paths"]["/api/v1/generate"]["post"]
    assert {"Idempotency-Key", "Prefer"} <= {p["name"] for p in generate["parameters"] if p["in"] == "header"}
    accepted = body(schema, "/api/v1/generate", "post", "202")["properties"]["data"]
    assert accepted == {"$ref": "#/components/schemas/JobAcceptedSchema"}
    assert {"X-Credit-Balance", "X-RateLimit-Remaining", "X-Request-Id"} <= set(generate["responses"]["202"]["headers"])
    assert "Retry-After" in generate["responses"]["default"]["headers"]


def test_the_schema_names_every_error_code_the_api_answers_with(schema):
    import generation.services  # noqa: F401  (defines IdempotencyConflict)
    from flixly_site.errors import ApplicationError
    from flixly_site.middleware import CODE_FOR_STATUS

    def codes(cls: type) -> set[str]:
        return {cls.code}.union(*(codes(sub) for sub in cls.__subclasses__()))

    documented = set(schema["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    assert codes(ApplicationError) | set(CODE_FOR_STATUS.values()) <= documented


def test_path_parameters_have_the_contracts_names(schema):
    assert {
        "/api/v1/jobs/{jobId}",
        "/api/v1/jobs/{jobId}/cancel",
        "/api/v1/keys/{id}",
        "/api/v1/keys/{id}/roll",
    } <= set(schema["paths"])
    assert "/api/v1/models/{id}" in schema["paths"]


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_the_document_is_json_unless_yaml_is_asked_for(client, accept):
    headers = {"Accept": accept} if accept else {}
    response = client.get("/api/v1/schema", headers=headers)
    assert response["Content-Type"] == "application/json"
    assert response.json()["openapi"].startswith("3.")


@pytest.mark.parametrize(("query", "accept"), [("?format=yaml", "*/*"), ("", "application/vnd.oai.openapi")])
def test_yaml_is_there_when_asked_for(client, query, accept):
    response = client.get(f"/api/v1/schema{query}", headers={"Accept": accept})
    assert response.status_code == 200 and response.content.startswith(b"openapi: 3.")


@pytest.mark.parametrize(
    "path", ["/api/v1/jobs", "/api/v1/keys", "/api/v1/credits/ledger", "/api/v1/webhook/deliveries"]
)
def test_every_paged_list_documents_its_cursor_and_limit(schema, path):
    parameters = {p["name"]: p for p in schema["paths"][path]["get"].get("parameters", [])}
    assert {"cursor", "limit"} <= set(parameters)
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [("/api/v1/jobs", "status", "failed"), ("/api/v1/jobs", "type", "CHAT"), ("/api/v1/models", "type", "CHAT")],
)
def test_a_filter_documents_the_values_it_takes(schema, path, name, value):
    parameters = {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}
    assert value in parameters[name]["enum"]


def test_each_endpoint_documents_the_query_parameters_it_takes(schema):
    from django.urls import resolve

    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/") or path == "/api/v1/health":
            continue
        view = resolve(path.format(jobId="00000000-0000-0000-0000-000000000000", id="x")).func.view_class
        for method, operation in operations.items():
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert documented == set(view.query_names.get(method, ())), (method, path)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer flx_live_" + "0" * 40, "Bearer garbage", "Basic dXNlcjpwYXNz"],
)
@pytest.mark.parametrize("path", ["/api/docs", "/api/v1/schema"])
def test_the_docs_and_the_schema_are_public_documents_whatever_authorization_comes_with_them(
    client, db, path, authorization
):
    # A site behind HTTP basic auth sends Basic on every request; a stale key in a browser tool sends a dead one.
    response = client.get(path, HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 200


def test_every_operation_has_a_summary_and_a_description_for_the_apis_users(schema):
    from flixly_site.apiview import ApiView

    notes = {
        ApiView.__doc__.split(";")[0],
        "An OpenAI endpoint answered by a job",
    }  # docstrings, for the code's readers
    operations = [operation for path in schema["paths"].values() for operation in path.values()]
    assert len(operations) >= 20
    for operation in operations:
        assert operation["summary"] and len(operation["description"]) > 20, operation["operationId"]
        assert not any(note in operation["description"] for note in notes), operation["operationId"]


def test_no_component_is_described_by_a_note_for_the_codes_readers(schema):
    described = {name for name, component in schema["components"]["schemas"].items() if component.get("description")}
    assert {name for name in described if not name.endswith("Enum")} == set()
