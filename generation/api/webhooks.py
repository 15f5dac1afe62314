"""The account's webhook endpoint (GET, PUT, DELETE /webhook), a test ping, and the delivery log."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from flixly_site.apiview import PAGE_QUERY, ApiView
from flixly_site.pagination import page_parameters, paginated_response
from generation.api.serializers import DeliverySchema, WebhookInput, WebhookSchema, delivery_data, endpoint_data
from generation.webhooks import deliveries_for, endpoint_delete, endpoint_get, endpoint_set, endpoint_test


class WebhookApi(ApiView):
    required_scope = "webhooks:manage"

    @extend_schema(operation_id="webhook_get", responses=WebhookSchema)
    def get(self, request: Request) -> Response:
        return Response({"data": endpoint_data(endpoint_get(user=request.user))})

    @extend_schema(operation_id="webhook_set", request=WebhookInput, responses=WebhookSchema)
    def put(self, request: Request) -> Response:
        payload = WebhookInput(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint = endpoint_set(user=request.user, url=payload.validated_data["url"])
        return Response({"data": endpoint_data(endpoint, with_secret=True)})

    @extend_schema(operation_id="webhook_delete", responses={200: WebhookSchema})
    def delete(self, request: Request) -> Response:
        endpoint = endpoint_get(user=request.user)
        endpoint_delete(user=request.user)
        return Response({"data": endpoint_data(endpoint)})


class WebhookTestApi(ApiView):
    required_scope = "webhooks:manage"

    @extend_schema(operation_id="webhook_test", request=None, responses=DeliverySchema)
    def post(self, request: Request) -> Response:
        return Response({"data": delivery_data(endpoint_test(user=request.user))})


class WebhookDeliveryListApi(ApiView):
    required_scope = "webhooks:manage"
    query_names = {"get": PAGE_QUERY}

    @extend_schema(operation_id="webhook_deliveries", parameters=page_parameters(), responses=DeliverySchema(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(deliveries_for(user=request.user), request, delivery_data)
