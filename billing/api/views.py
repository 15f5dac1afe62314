from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.serializers import LedgerEntryOutput, UsageOutput
from billing.selectors import ledger_for, usage_for
from flixly_site.apiview import PAGE_QUERY, ApiView
from flixly_site.pagination import page_parameters, paginated_response


class UsageApi(ApiView):
    required_scope = "billing:read"

    @extend_schema(operation_id="usage", responses=UsageOutput)
    def get(self, request: Request) -> Response:
        usage = usage_for(user=request.user)
        plan = request.user.plan
        data = {
            "credits": usage.credits,
            "plan": plan.slug,
            "used": usage.jobs_by_category,
            "creditsUsedByType": usage.credits_by_category,
            "creditsUsedThisCycle": usage.credits_used,
            "cycleStart": usage.cycle_start,
            "cycleEnd": usage.cycle_end,
            "rateLimit": {"requestsPerMinute": plan.requests_per_minute, "parallelTasks": plan.parallel_tasks},
        }
        request._request.flixly_balance = usage.credits
        return Response({"data": UsageOutput(data).data})


class LedgerApi(ApiView):
    required_scope = "billing:read"
    query_names = {"get": PAGE_QUERY}

    @extend_schema(operation_id="credits_ledger", parameters=page_parameters(), responses=LedgerEntryOutput(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(ledger_for(user=request.user), request, lambda e: LedgerEntryOutput(e).data)
