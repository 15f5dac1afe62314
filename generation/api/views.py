import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.ratelimit import account_wait_slot
from accounts.selectors import KeyIdentity
from billing.services import key_spent_this_month, wallet_balance
from flixly_site.apiview import PAGE_QUERY, ApiView
from flixly_site.errors import PayloadTooLarge, ValidationFailed
from flixly_site.pagination import page_limit, page_parameters, paginated_response, sorted_page
from flixly_site.parsers import CsvRenderer, JSONParser, csv_errors_as_json, is_json_object
from generation.api.serializers import (
    GenerateInput,
    JobAcceptedSchema,
    JobSchema,
    ModelSchema,
    QuoteSchema,
    job_data,
    job_summary,
    model_data,
)
from generation.catalog import catalog_get_or_404, catalog_models, route_for
from generation.kinds import JOB_TYPES
from generation.models import FINISHED_STATUSES, Job, JobStatus
from generation.outbound import OutboundError, TooLarge, check_url, fetch_image
from generation.selectors import JOB_FILTERS, checked_choice, export_csv, export_window, job_filters, job_get, jobs_for
from generation.services import job_cancel, job_key_check, job_refuse_disallowed, job_submit
from generation.validation import upload_read, validate_generate
from generation.webhooks import require_endpoint

PREFER_WAIT = re.compile(r"(?:^|[\s,;])wait\s*=\s*([0-9]+)")
MAX_WAIT_SECONDS = 60
WAIT_POLL_SECONDS = 0.2
WHEN = "An ISO 8601 date or date-time (UTC unless it has an offset)."


def job_filter_parameters() -> list[OpenApiParameter]:
    """The job list's and the export's filters, for their OpenAPI operations."""
    return [
        OpenApiParameter("status", str, enum=JobStatus.values),
        OpenApiParameter("type", str, enum=JOB_TYPES),
        OpenApiParameter("model", str, description="A catalog id."),
    ]


class ModelListApi(ApiView):
    # Public, but a key that is sent is checked (and rate-limited) like on every other endpoint.
    permission_classes = [AllowAny]
    query_names = {"get": ("type", *PAGE_QUERY)}

    @extend_schema(
        operation_id="models_list",
        responses=ModelSchema(many=True),
        parameters=[
            OpenApiParameter("type", str, enum=JOB_TYPES, description="Only models of this job type."),
            *page_parameters(),
        ],
    )
    def get(self, request: Request) -> Response:
        models = catalog_models().values()
        if job_type := checked_choice(request.query_params.get("type"), JOB_TYPES, "type"):
            models = [m for m in models if job_type in m.types]
        page, next_cursor = sorted_page(
            list(models),
            key=lambda m: [m.sort_order, m.id],
            cursor=request.query_params.get("cursor"),
            limit=page_limit(request),
            salt="models",
        )
        data = [model_data(m, available=route_for(m, is_test=False) is not None) for m in page]
        return Response({"data": data, "nextCursor": next_cursor})


class ModelDetailApi(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="models_get", responses=ModelSchema)
    def get(self, request: Request, id: str) -> Response:
        model = catalog_get_or_404(id, listing="/api/v1/models")
        return Response({"data": model_data(model, available=route_for(model, is_test=False) is not None)})


def _fetch_input(url: str) -> bytes:
    try:
        return fetch_image(url, max_bytes=settings.FLIXLY_MAX_UPLOAD_BYTES)
    except TooLarge as error:
        raise PayloadTooLarge(str(error)) from None
    except OutboundError as error:
        raise ValidationFailed(details={"imageUrl": [str(error)]}) from None


DRY_RUN_VALUES = {
    **dict.fromkeys(("", "true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}


def _dry_run(request: Request) -> bool:
    # A value we cannot read must not turn a quote into a paid job (ApiView refuses a misspelt name).
    if len(request.query_params.getlist("dryRun")) > 1:
        raise ValidationFailed(details={"dryRun": ["Send dryRun once."]})
    value = DRY_RUN_VALUES.get(request.query_params.get("dryRun", "false").strip().lower())
    if value is None:
        raise ValidationFailed(details={"dryRun": ["Use dryRun=true for a quote, or leave it out to submit."]})
    return value


def _check_input_url(url: str) -> None:
    try:
        check_url(url, label="The image URL")
    except OutboundError as error:
        raise ValidationFailed(details={"imageUrl": [str(error)]}) from None


def _plain_data(request: Request) -> dict:
    if is_json_object(request.data):
        return dict(request.data)
    if hasattr(request.data, "dict"):
        return request.data.dict()  # a multipart QueryDict: one value per field
    raise ValidationFailed("The body must be a JSON object.", details={"body": ["Expected a JSON object."]})


def _wait_seconds(request: Request) -> int:
    match = PREFER_WAIT.search(request.headers.get("Prefer", ""))
    if match is None:
        return 0
    digits = match.group(1).lstrip("0") or "0"
    return MAX_WAIT_SECONDS if len(digits) > 2 else min(int(digits), MAX_WAIT_SECONDS)


@contextlib.contextmanager
def _waiting(request: Request, seconds: int) -> Iterator[int]:
    """The seconds to wait for the job: Prefer is a preference, and with every wait slot of the account in
    use (accounts.ratelimit.account_wait_slot) the job is answered at once."""
    if not seconds:
        yield 0
        return
    with account_wait_slot(request.user) as slot:
        yield seconds if slot.taken else 0


def wait_for(job: Job, seconds: int) -> Job:
    """The job once it has finished, or as it stands after `seconds`."""
    deadline = time.monotonic() + seconds
    while job.status not in FINISHED_STATUSES and time.monotonic() < deadline:
        time.sleep(WAIT_POLL_SECONDS)
        job.refresh_from_db()
    return job


def idempotency_key(request: Request) -> str | None:
    header = request.headers.get("Idempotency-Key")
    key = None if header is None else _as_sent(header)
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationFailed(details={"Idempotency-Key": ["Must be 1 to 255 characters."]})
    return key


def _as_sent(header: str) -> str:
    """A header value as the client wrote it: WSGI hands over its bytes read as Latin-1, and clients send
    UTF-8 (a value that is not UTF-8 stays as read)."""
    try:
        return header.encode("latin-1").decode()
    except UnicodeError:
        return header


class GenerateApi(ApiView):
    required_scope = "generate"
    query_names = {"post": ("dryRun",)}
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="generate",
        request=GenerateInput,
        parameters=[
            OpenApiParameter("dryRun", bool, description="Quote and validate without charging."),
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="1-255 characters. The same key and body within 24 h return the first job again.",
            ),
            OpenApiParameter(
                "Prefer", str, OpenApiParameter.HEADER, description="wait=N (N <= 60): answer when the job ends."
            ),
        ],
        responses={
            202: JobAcceptedSchema,
            200: PolymorphicProxySerializer(
                "FinishedJobOrQuote", [JobSchema, QuoteSchema], resource_type_field_name=None
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = _plain_data(request)
        upload = upload_read(request.FILES.get("image"))
        valid = validate_generate(data, has_upload=upload is not None, json_types=is_json_object(request.data))
        if valid.webhook_url:
            require_endpoint(user=request.user)
        key = idempotency_key(request)
        if _dry_run(request):
            identity = request.auth if isinstance(request.auth, KeyIdentity) else None
            job_refuse_disallowed(identity, valid)
            if key and not valid.image_url:  # an imageUrl's bytes, part of the request's fingerprint, are not fetched
                job_key_check(user=request.user, identity=identity, key=key, body=data, image=upload)
            if valid.image_url:
                _check_input_url(valid.image_url)  # the checks a submit makes before fetching, without fetching
            return Response({"data": self._quote(request, valid)})
        image = _fetch_input(valid.image_url) if valid.image_url else upload
        with _waiting(request, _wait_seconds(request)) as wait:  # before the charge: nothing after it refuses
            submitted = job_submit(
                user=request.user,
                identity=request.auth,
                request=valid,
                idempotency_key=key,
                body=data,
                image=image,
            )
            response = self._answer(submitted.job, wait)
        if submitted.balance is not None and response.status_code == 202:
            # The balance the debit left; a job waited for until it finished may have been refunded since,
            # and then the header reads the wallet.
            request._request.flixly_balance = submitted.balance
        if not submitted.created:
            response["Idempotent-Replayed"] = "true"  # Stripe's name for it: this is the first request's job
        return response

    @staticmethod
    def _quote(request: Request, valid) -> dict:
        is_test = getattr(request.auth, "is_test", False)
        price = 0 if is_test else valid.price
        cap = getattr(request.auth, "monthly_credit_cap", None)  # None: no cap on the key, or a session asks
        within_cap = None if cap is None else key_spent_this_month(api_key_id=request.auth.key_id) + price <= cap
        return {
            "dryRun": True,
            "valid": True,
            "model": valid.model.id,
            "type": valid.type,
            "params": valid.params,
            "creditsCharged": price,
            "available": route_for(valid.model, is_test=is_test) is not None,
            "sufficientCredits": price == 0 or wallet_balance(user_id=request.user.pk) >= price,
            "withinMonthlyCap": within_cap,
        }

    @staticmethod
    def _answer(job: Job, wait: int) -> Response:
        # 200 with the full job only for a client that asked to wait; otherwise the 202 summary, also
        # when a replayed Idempotency-Key names a job that has finished since.
        if wait and wait_for(job, wait).status in FINISHED_STATUSES:
            return Response({"data": job_data(job)}, status=200)
        response = Response({"data": job_summary(job)}, status=202)
        response["Location"] = f"/api/v1/jobs/{job.id}"
        return response


class JobListApi(ApiView):
    required_scope = "jobs:read"
    query_names = {"get": (*JOB_FILTERS, "createdAfter", "createdBefore", *PAGE_QUERY)}

    @extend_schema(
        operation_id="jobs_list",
        parameters=[
            *job_filter_parameters(),
            *(OpenApiParameter(name, str, description=WHEN) for name in ("createdAfter", "createdBefore")),
            *page_parameters(),
        ],
        responses=JobSchema(many=True),
    )
    def get(self, request: Request) -> Response:
        jobs = jobs_for(user=request.user, filters=request.query_params)
        return paginated_response(jobs, request, job_data)


class JobDetailApi(ApiView):
    required_scope = "jobs:read"

    @extend_schema(operation_id="jobs_get", responses=JobSchema)
    def get(self, request: Request, jobId: str) -> Response:  # noqa: N803 (the contract's path parameter)
        return Response({"data": job_data(job_get(user=request.user, job_id=jobId))})


class JobCancelApi(ApiView):
    required_scope = "generate"

    @extend_schema(operation_id="jobs_cancel", request=None, responses=JobSchema)
    def post(self, request: Request, jobId: str) -> Response:  # noqa: N803 (the contract's path parameter)
        job = job_cancel(user=request.user, job_id=jobId)
        return Response({"data": job_data(job)})


class JobExportApi(ApiView):
    required_scope = "jobs:read"
    query_names = {"get": ("from", "to", *JOB_FILTERS)}
    renderer_classes = [*ApiView.renderer_classes, CsvRenderer]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        csv_errors_as_json(request, response)
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        operation_id="jobs_export_csv",
        parameters=[
            *(OpenApiParameter(name, str, description=WHEN) for name in ("from", "to")),
            *job_filter_parameters(),
        ],
        responses={(200, "text/csv"): str},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        start, end = export_window(request.query_params)
        filters = job_filters(request.query_params)
        chunks = export_csv(user=request.user, start=start, end=end, filters=filters)
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        filename = f"flixly-jobs-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
