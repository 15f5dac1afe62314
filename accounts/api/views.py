from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import ApiKeyCreateInput, ApiKeyOutput, ApiKeyRollInput, IssuedKeyOutput
from accounts.models import KeyMode
from accounts.selectors import KeyIdentity, apikey_get, apikey_list
from accounts.services import IssuedKey, apikey_create, apikey_revoke, apikey_roll
from flixly_site.errors import Forbidden, NotFound
from flixly_site.pagination import paginated_response


def _refuse_live_for_a_test_key(request: Request, mode: str) -> None:
    # A test key is for trying things out: it must not mint or change keys that spend real credits.
    if isinstance(request.auth, KeyIdentity) and request.auth.is_test and mode != KeyMode.TEST:
        raise Forbidden("A test key can only create, roll or revoke test keys.")


def _target_mode(request: Request, key_id: str) -> str:
    api_key = apikey_get(user=request.user, key_id=key_id)
    if api_key is None:
        raise NotFound("No API key with that id.")
    return api_key.mode


def issued_key_data(issued: IssuedKey) -> dict:
    return {**ApiKeyOutput(issued.api_key).data, "key": issued.raw}


class ApiKeyListCreateApi(APIView):
    required_scope = "keys:manage"

    @extend_schema(operation_id="keys_list", responses=ApiKeyOutput(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(apikey_list(user=request.user), request, lambda k: ApiKeyOutput(k).data)

    @extend_schema(operation_id="keys_create", request=ApiKeyCreateInput, responses={201: IssuedKeyOutput})
    def post(self, request: Request) -> Response:
        payload = ApiKeyCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        _refuse_live_for_a_test_key(request, data["mode"])
        issued = apikey_create(
            user=request.user,
            name=data["name"],
            mode=data["mode"],
            scopes=data.get("scopes"),
            expires_in_days=data.get("expiresInDays"),
            monthly_credit_cap=data.get("monthlyCreditCap"),
            allowed_ips=data.get("allowedIps"),
            allowed_models=data.get("allowedModels"),
        )
        return Response({"data": issued_key_data(issued)}, status=status.HTTP_201_CREATED)


class ApiKeyRollApi(APIView):
    required_scope = "keys:manage"

    @extend_schema(operation_id="keys_roll", request=ApiKeyRollInput, responses=IssuedKeyOutput)
    def post(self, request: Request, key_id: str) -> Response:
        payload = ApiKeyRollInput(data=request.data)
        payload.is_valid(raise_exception=True)
        _refuse_live_for_a_test_key(request, _target_mode(request, key_id))
        issued = apikey_roll(user=request.user, key_id=key_id, grace_hours=payload.validated_data["graceHours"])
        return Response({"data": issued_key_data(issued)})


class ApiKeyRevokeApi(APIView):
    required_scope = "keys:manage"

    @extend_schema(operation_id="keys_revoke", responses=ApiKeyOutput)
    def delete(self, request: Request, key_id: str) -> Response:
        _refuse_live_for_a_test_key(request, _target_mode(request, key_id))
        api_key = apikey_revoke(user=request.user, key_id=key_id)
        return Response({"data": ApiKeyOutput(api_key).data})
