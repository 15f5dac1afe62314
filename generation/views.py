"""Dashboard pages for generation: the playground, the jobs list, a job's page and the webhook settings.
Services do the work."""

import mimetypes
import uuid
from contextlib import suppress
from datetime import date, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_http_methods, require_safe

from billing.services import wallet_balance
from flixly_site.errors import ApplicationError, NotFound, RateLimited, ValidationFailed, error_json
from flixly_site.forms import (
    add_api_errors,
    form_field_name,
    form_sent_twice,
    form_token_release,
    form_token_renew,
    post_only_form,
)
from flixly_site.pagination import dashboard_page
from flixly_site.parsers import parse_uuid
from generation.api.serializers import job_data
from generation.catalog import catalog_every_model, catalog_models, route_for
from generation.forms import FORM_NAMES, PROMPT_PLACEHOLDERS, GenerateForm, JobFilterForm, WebhookForm
from generation.kinds import NEEDS_IMAGE, VISUAL
from generation.models import (
    ACTIVE_STATUSES,
    AiModel,
    DeliveryStatus,
    Job,
    JobStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from generation.outputs import output_download_name, output_name_from_token
from generation.ranges import ranged_file_response
from generation.selectors import JOB_FILTERS, export_window, job_filters, job_get, jobs_for
from generation.services import IdempotencyConflict, Submitted, job_cancel, job_submit
from generation.validation import ValidRequest, validate_generate
from generation.webhooks import (
    deliveries_for,
    delivery_answer,
    endpoint_delete,
    endpoint_get,
    endpoint_set,
    endpoint_test,
)

JOBS_PER_PAGE = 25
RECENT_DELIVERIES = 20
PARAM_LABELS = {
    "width": "Width",
    "height": "Height",
    "steps": "Steps",
    "seed": "Seed",
    "style": "Style",
    "duration": "Duration (seconds)",
    "resolution": "Resolution",
    "fps": "Frames per second",
    "voice": "Voice",
    "speed": "Speed",
    "language": "Language",
    "maxTokens": "Max reply tokens",
}


# --- Generate -------------------------------------------------------------------------------------


def _routes(models: dict[str, AiModel]) -> dict[str, str]:
    """Where each model that can run on this server runs now (a hosted one may fall back to the local engine)."""
    routes = {model_id: route_for(model, is_test=False) for model_id, model in models.items()}
    return {model_id: route for model_id, route in routes.items() if route is not None}


def _catalog_json(models: dict[str, AiModel], routes: dict[str, str]) -> dict[str, Any]:
    """What generate.js needs to show only the fields the chosen model takes."""
    return {
        "models": {
            m.id: {
                "types": m.types,
                "credits": m.credits,
                "params": m.params,
                "description": m.description,
                "available": m.id in routes,
                # FLIXLY_LOCAL_FALLBACK: a hosted model with no upstream set up runs on the local engine
                "standIn": routes.get(m.id, m.route) != m.route,
            }
            for m in models.values()
        },
        "placeholders": PROMPT_PLACEHOLDERS,
        "needsImage": sorted(NEEDS_IMAGE),
        "visual": sorted(VISUAL),
    }


def _validate(form: GenerateForm) -> ValidRequest:
    return validate_generate(form.api_data(), has_upload=form.cleaned_data.get("image") is not None)


def _submit(request: HttpRequest, form: GenerateForm, valid: ValidRequest) -> Submitted:
    data, image = form.api_data(), form.cleaned_data.get("image")
    once = form.cleaned_data.get("once")
    return job_submit(
        user=request.user,
        identity=None,
        request=valid,
        idempotency_key=f"form:{once}" if once else None,
        body=data,
        image=image,
    )


def _playground(
    request: HttpRequest, form: GenerateForm, models: dict[str, AiModel], routes: dict[str, str], price: int | None
) -> HttpResponse:
    context = {
        "nav": "generate",
        "form": form,
        "balance": wallet_balance(user_id=request.user.pk),
        "price": price,
        "catalog": _catalog_json(models, routes),
    }
    return render(request, "generation/generate.html", context)


def _process(request: HttpRequest, form: GenerateForm) -> tuple[Submitted | None, int | None]:
    """Submit the job, or only price it when the user asked for a quote; errors land on the form, and a
    refused submit still shows the price it was refused at."""
    price = None
    try:
        valid = _validate(form)
        price = valid.price
        if request.POST.get("intent") == "quote":
            return None, price
        return _submit(request, form, valid), None
    except IdempotencyConflict:
        form.add_error(None, "This form was already used for another job. Press Generate again to start a new one.")
        form_token_renew(form)
    except ValidationFailed as error:
        add_api_errors(form, error, FORM_NAMES)
    except ApplicationError as error:
        form.add_error(None, error.message)
    return None, price


def _add_catalog_errors(form: GenerateForm) -> None:
    """On a form with errors, the catalog's checks of the fields that passed too: one submit shows them all."""
    try:
        _validate(form)
    except ValidationFailed as error:
        details = error.details or {}
        fresh = {name: texts for name, texts in details.items() if form_field_name(name, FORM_NAMES) not in form.errors}
        if fresh:
            add_api_errors(form, ValidationFailed(details=fresh), FORM_NAMES)
    except ApplicationError:
        pass  # what the form's own errors already stop


@login_required
@require_http_methods(["GET", "POST"])
def generate(request: HttpRequest) -> HttpResponse:
    models = catalog_models()
    routes = _routes(models)
    initial = {name: request.GET[name] for name in ("model", "type") if name in request.GET}
    form = GenerateForm(request.POST or None, request.FILES or None, models=models, routes=routes, initial=initial)
    submitted, price = None, None
    if form.is_bound and form.is_valid():
        submitted, price = _process(request, form)
    elif form.is_bound:
        _add_catalog_errors(form)
    if submitted is not None:
        messages.success(request, _submitted_message(submitted))
        return redirect("job-detail", job_id=submitted.job.pk)
    if form.is_bound and "application/json" in request.headers.get("Accept", ""):
        return _live_price(form, price)
    return _playground(request, form, models, routes, price)


def _live_price(form: GenerateForm, price: int | None) -> JsonResponse:
    """generate.js's price as the form changes: the page's own quote, so it spends none of the API's rate limit."""
    if price is not None:
        return JsonResponse({"data": {"creditsCharged": price}})
    # generate.js shows the first message alone: each names its field as the page labels it.
    details = {
        name: [f"{form.fields[name].label}: {message}" if name in form.fields else str(message) for message in errors]
        for name, errors in form.errors.items()
    }
    return error_json("validation_error", 422, "The form is not ready for a price yet.", details)


def _submitted_message(submitted: Submitted) -> str:
    if not submitted.created:
        return "This form was already sent, so nothing more was charged: here is its job."
    credits = f"{submitted.job.credits_charged} credit{'s' if submitted.job.credits_charged != 1 else ''}"
    return f"Job submitted: {credits} charged. Failed jobs are refunded automatically."


# --- Jobs -----------------------------------------------------------------------------------------


def _query(request: HttpRequest, **changes: str | None) -> str:
    query = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value:
            query[name] = value
    return query.urlencode()


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    if job_id := parse_uuid(request.GET.get("job", "")):  # links from the billing page's credit history
        return redirect("job-detail", job_id=job_id)
    form = JobFilterForm(request.GET or None, models=catalog_every_model())
    filters = form.filters()
    jobs = jobs_for(user=request.user, filters=filters).select_related("model")
    rows, next_cursor = dashboard_page(request, jobs, limit=JOBS_PER_PAGE, rows_named="jobs")
    context = {
        "nav": "jobs",
        "form": form,
        "filtered": bool(filters),
        "rows": [(job, job.type_label) for job in rows],
        "next_query": _query(request, cursor=next_cursor) if next_cursor else None,
        "first_query": _query(request, cursor=None) if request.GET.get("cursor") else None,
        "export_filters": filters,
        **_export_dates(request),
    }
    return render(request, "generation/jobs.html", context)


def _export_dates(request: HttpRequest) -> dict[str, date]:
    """The export form's dates: as typed when a refused export sends them back, else the last 30 days."""
    today = timezone.now().date()
    typed_from, typed_to = (_date_or_none(request.GET.get(name, "")) for name in ("exportFrom", "exportTo"))
    return {"export_from": typed_from or today - timedelta(days=30), "export_to": typed_to or today}


def _date_or_none(text: str) -> date | None:
    try:
        return parse_date(text)
    except ValueError:  # the shape of a date, but no such day
        return None


@login_required
def jobs_export(request: HttpRequest) -> HttpResponse:
    """The page's export form: a window the API would refuse comes back as a message on the jobs page;
    a good one goes to the API's CSV export, which this session may call."""
    params = {name: request.GET[name] for name in ("from", "to", *JOB_FILTERS) if request.GET.get(name)}
    try:
        export_window(params)
        job_filters(params)
    except ValidationFailed as error:
        messages.error(request, error.as_text())
        typed = {"exportFrom": params.pop("from", ""), "exportTo": params.pop("to", ""), **params}
        return redirect(f"{reverse('jobs')}?{urlencode(typed)}")
    return redirect(f"{reverse('api-v1-jobs-export')}?{urlencode(params)}")


# --- One job --------------------------------------------------------------------------------------


def _own_job(request: HttpRequest, job_id: uuid.UUID) -> Job:
    try:
        return job_get(user=request.user, job_id=job_id)
    except NotFound:
        raise Http404("No such job") from None


def _output_view(job: Job, output: dict) -> dict:
    kind = output["contentType"].split("/")[0]
    filename = output_download_name(job.id, PurePosixPath(output["url"].split("?")[0]).name)
    return {**output, "kind": kind if kind in ("image", "video", "audio") else "file", "filename": filename}


def _param_rows(params: dict) -> list[tuple[str, Any]]:
    return [(PARAM_LABELS[name], params[name]) for name in PARAM_LABELS if name in params]


@login_required
def job_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _own_job(request, job_id)
    data = job_data(job)
    stopping = job.status in ACTIVE_STATUSES and job.cancel_requested
    context = {
        "nav": "jobs",
        "job": job,
        "type_label": job.type_label,
        "unfinished": job.status in ACTIVE_STATUSES,
        "stopping": stopping,
        "status_label": "Stopping" if stopping else job.get_status_display(),
        "outputs": [_output_view(job, output) for output in data["outputs"]],
        "prompt": job.prompt_text,
        "params": _param_rows(job.params),
        "local_fallback": job.metadata.get("localFallback", False),
    }
    return render(request, "generation/job_detail.html", context)


def _cancel_message(job: Job) -> str:
    if job.status == JobStatus.CANCELED and job.credits_refunded:
        return f"Job canceled. {job.credits_refunded} credits are back in your balance."
    if job.status == JobStatus.CANCELED:
        return "Job canceled."
    if job.status == JobStatus.RUNNING:
        return "Stopping the job. It ends at its next step and your credits come back."
    return "This job had already finished, so there was nothing to cancel."


@login_required
@post_only_form("job-detail", page_takes_arguments=True)
def cancel_job(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = job_cancel(user=request.user, job_id=_own_job(request, job_id).pk)
    messages.success(request, _cancel_message(job))
    return redirect("job-detail", job_id=job.pk)


@require_safe
def output_file(request: HttpRequest, token: str, filename: str) -> HttpResponse:
    """A generated file behind a signed, expiring link: the signature is the permission."""
    name = output_name_from_token(token)
    if name is None or PurePosixPath(name).name != filename or not default_storage.exists(name):
        message = "This link is invalid or has expired. Fetch the job again for a fresh link."
        return error_json("forbidden", 403, message)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    file = default_storage.open(name, "rb")
    response = ranged_file_response(request, file, default_storage.size(name), content_type)
    response["Cache-Control"] = "private, max-age=3600"
    path = PurePosixPath(name)  # outputs/<account>/<job>/[<attempt>/]<n>.<suffix>
    response["Content-Disposition"] = f'inline; filename="{output_download_name(path.parts[2], path.name)}"'
    response["Content-Security-Policy"] = "sandbox"  # an HTML or SVG file from a provider runs no script here
    return response


# --- Webhooks -------------------------------------------------------------------------------------


def _endpoint_or_none(request: HttpRequest) -> WebhookEndpoint | None:
    try:
        return endpoint_get(user=request.user)
    except NotFound:
        return None


def _webhooks_page(request: HttpRequest, form: WebhookForm, endpoint: WebhookEndpoint | None) -> HttpResponse:
    context = {
        "nav": "webhooks",
        "endpoint": endpoint,
        "form": form,
        "deliveries": deliveries_for(user=request.user)[:RECENT_DELIVERIES],
    }
    return render(request, "generation/webhooks.html", context)


def _show_signing_secret(request: HttpRequest, endpoint: WebhookEndpoint, *, replaced: bool) -> HttpResponse:
    context = {"nav": "webhooks", "endpoint": endpoint, "replaced": replaced}
    response = render(request, "generation/webhook_secret.html", context)
    add_never_cache_headers(response)  # Back or a shared cache must never bring the secret back
    return response


@login_required
@require_http_methods(["GET", "POST"])
def webhooks(request: HttpRequest) -> HttpResponse:
    endpoint = _endpoint_or_none(request)
    form = WebhookForm(request.POST or None, initial={"url": endpoint.url} if endpoint else None)
    if request.method == "POST" and form.is_valid():
        note = "The signing secret is shown once: if you did not copy it, set the URL again to get a new one."
        if resent := form_sent_twice(request, form, secret_note=note, page="webhooks"):
            return resent
        try:
            updated = endpoint_set(user=request.user, url=form.cleaned_data["url"])
        except ValidationFailed as error:
            add_api_errors(form, error)
            form_token_release(request, form)
        else:
            return _show_signing_secret(request, updated, replaced=endpoint is not None)
    return _webhooks_page(request, form, endpoint)


def _report_test(request: HttpRequest, delivery: WebhookDelivery) -> None:
    facts = delivery_answer(delivery)
    bracketed = f" ({facts})" if facts else ""
    if delivery.status == DeliveryStatus.SUCCEEDED:
        messages.success(request, f"Test event delivered: {facts}.")
    elif delivery.status == DeliveryStatus.PENDING and not delivery.error:
        messages.info(request, "Test event queued: no worker has sent it yet. Its result will show below.")
    elif delivery.status == DeliveryStatus.PENDING:
        retry = f"{delivery.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC"
        messages.warning(request, f"Test event not delivered yet{bracketed}: {delivery.error} Next try at {retry}.")
    else:
        messages.error(request, f"Test event failed{bracketed}: {delivery.error}")


@login_required
@post_only_form("webhooks")
def webhook_test(request: HttpRequest) -> HttpResponse:
    try:
        delivery = endpoint_test(user=request.user)
    except NotFound:
        messages.info(request, "Set an endpoint URL first: the test event is sent there.")
    except RateLimited as error:
        messages.warning(request, str(error))
    else:
        _report_test(request, delivery)
    return redirect("webhooks")


@login_required
@require_http_methods(["GET", "POST"])
def webhook_remove(request: HttpRequest) -> HttpResponse:
    endpoint = _endpoint_or_none(request)
    if endpoint is None:
        messages.info(request, "No webhook endpoint is set, so there is nothing to remove.")
        return redirect("webhooks")
    if request.method == "POST":
        with suppress(NotFound):  # removed in another tab meanwhile: the outcome is the same
            endpoint_delete(user=request.user)
        messages.success(request, f"Webhook endpoint removed: no more events are sent to {endpoint.url}.")
        return redirect("webhooks")
    return render(request, "generation/webhook_remove.html", {"nav": "webhooks", "endpoint": endpoint})
