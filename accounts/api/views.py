from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import ApiKeyCreateInput, ApiKeyOutput, ApiKeyRollInput, IssuedKeyOutput
from accounts.selectors import KeyIdentity, apikey_list
from accounts.services import IssuedKey, apikey_create, apikey_revoke, apikey_roll
from flixly_site.apiview import PAGE_QUERY, ApiView
from flixly_site.pagination import page_parameters, paginated_response


def _as_test_key(request: Request) -> bool:
    # A test key is for trying things out: it must not mint or change keys that spend real credits.
    return isinstance(request.auth, KeyIdentity) and request.auth.is_test


def issued_key_data(issued: IssuedKey) -> dict:
    return {**ApiKeyOutput(issued.api_key).data, "key": issued.raw}


class ApiKeyListCreateApi(ApiView):
    required_scope = "keys:manage"
    query_names = {"get": PAGE_QUERY}

    @extend_schema(operation_id="keys_list", parameters=page_parameters(), responses=ApiKeyOutput(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(apikey_list(user=request.user), request, lambda k: ApiKeyOutput(k).data)

    @extend_schema(operation_id="keys_create", request=ApiKeyCreateInput, responses={201: IssuedKeyOutput})
    def post(self, request: Request) -> Response:
        payload = ApiKeyCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        issued = apikey_create(
            user=request.user,
            name=data["name"],
            mode=data["mode"],
            scopes=data.get("scopes"),
            expires_in_days=data.get("expiresInDays"),
            monthly_credit_cap=data.get("monthlyCreditCap"),
            allowed_ips=data.get("allowedIps"),
            allowed_models=data.get("allowedModels"),
            test_keys_only=_as_test_key(request),
        )
        return Response({"data": issued_key_data(issued)}, status=status.HTTP_201_CREATED)


class ApiKeyRollApi(ApiView):
    required_scope = "keys:manage"

    @extend_schema(operation_id="keys_roll", request=ApiKeyRollInput, responses=IssuedKeyOutput)
    def post(self, request: Request, id: str) -> Response:
        payload = ApiKeyRollInput(data=request.data)
        payload.is_valid(raise_exception=True)
        issued = apikey_roll(
            user=request.user,
            key_id=id,
            grace_hours=payload.validated_data["graceHours"],
            test_keys_only=_as_test_key(request),
        )
        return Response({"data": issued_key_data(issued)})


class ApiKeyRevokeApi(ApiView):
    required_scope = "keys:manage"

    @extend_schema(operation_id="keys_revoke", responses={200: ApiKeyOutput})
    def delete(self, request: Request, id: str) -> Response:
        api_key = apikey_revoke(user=request.user, key_id=id, test_keys_only=_as_test_key(request))
        return Response({"data": ApiKeyOutput(api_key).data})
