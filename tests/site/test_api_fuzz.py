"""Property-based fuzzing of the public API from its own OpenAPI schema: no input may cause a 5xx, and every
answer, success or error, is what the schema says (status, content type, body)."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

schema = schemathesis.openapi.from_wsgi("/api/v1/schema", get_wsgi_application())


@pytest.fixture
def key_header(user, make_key):
    from accounts.models import Scope
    from billing.services import wallet_adjust

    wallet_adjust(user_id=user.pk, amount=1000, reason="fuzzing funds")
    return {"Authorization": f"Bearer {make_key(user, scopes=list(Scope.values))}"}


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_from_the_schema_breaks_the_api(case, key_header):
    from accounts.models import Plan

    Plan.objects.update(requests_per_minute=200, parallel_tasks=25)
    response = case.call(headers=key_header)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    case.validate_response(response, checks=checks)
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "status", "message"}
