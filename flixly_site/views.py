"""Pages that compose several apps: the landing page, the dashboard and the docs."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.csp import CSP, build_policy
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from accounts.selectors import apikey_list
from billing.selectors import wallet_for
from generation.selectors import jobs_for


def favicon(request: HttpRequest) -> HttpResponse:
    """Pages name their icon; clients that ask /favicon.ico anyway (feed readers, bookmarks) get it too."""
    return redirect(static("img/logo.svg"), permanent=True)


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "nav": "dashboard",
        "wallet": wallet_for(user=request.user),
        "plan": request.user.plan,
        "recent_jobs": jobs_for(user=request.user, filters={}).select_related("model").order_by("-created_at")[:5],
        "key_count": apikey_list(user=request.user).filter(revoked_at__isnull=True).count(),
    }
    return render(request, "dashboard/index.html", context)


def docs(request: HttpRequest) -> HttpResponse:
    return render(request, "docs.html", {"nav": "docs"})


# Redoc's sidebar shows a logo from its CDN: the policy keeps the page to this server.
DOCS_POLICY = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "worker-src": [CSP.SELF, "blob:"],
}


class ApiSchemaView(SpectacularAPIView):
    """The OpenAPI document: JSON, like the rest of the API, unless YAML is asked for (?format=yaml or an
    Accept of application/vnd.oai.openapi); drf-spectacular's default is YAML."""

    renderer_classes = [OpenApiJsonRenderer2, OpenApiJsonRenderer, OpenApiYamlRenderer2, OpenApiYamlRenderer]


class ApiDocsView(SpectacularRedocView):
    """The API reference (Redoc, from drf-spectacular-sidecar's static files), fetching nothing elsewhere."""

    def finalize_response(
        self, request: HttpRequest, response: HttpResponse, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = super().finalize_response(request, response, *args, **kwargs)
        response[str(CSP.HEADER_ENFORCE)] = build_policy(DOCS_POLICY)  # a plain str, as WSGI servers require
        return response
