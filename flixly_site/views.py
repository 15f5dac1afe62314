"""Pages that compose several apps: the landing page, the dashboard and the docs."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.csp import CSP
from django.utils.decorators import method_decorator
from django.views.decorators.csp import csp_override, csp_report_only_override
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from accounts.selectors import apikey_active_count
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
        "key_count": apikey_active_count(user=request.user),
    }
    return render(request, "dashboard/index.html", context)


def docs(request: HttpRequest) -> HttpResponse:
    return render(request, "docs.html", {"nav": "docs"})


# The site's policy, but Redoc adds <style> elements as it runs ('unsafe-inline', which a nonce in the
# directive would cancel) and searches in a blob: worker. Its sidebar logo from a CDN stays blocked.
DOCS_POLICY = {
    **settings.CONTENT_POLICY,
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "media-src": None,
    "worker-src": [CSP.SELF, "blob:"],
}


class ApiSchemaView(SpectacularAPIView):
    """The OpenAPI document: JSON, like the rest of the API, unless YAML is asked for (?format=yaml or an
    Accept of application/vnd.oai.openapi); drf-spectacular's default is YAML."""

    renderer_classes = [OpenApiJsonRenderer2, OpenApiJsonRenderer, OpenApiYamlRenderer2, OpenApiYamlRenderer]


@method_decorator(csp_override(DOCS_POLICY), name="dispatch")
@method_decorator(csp_report_only_override({}), name="dispatch")  # its own policy, in development too
class ApiDocsView(SpectacularRedocView):
    """The API reference (Redoc, from drf-spectacular-sidecar's static files), fetching nothing elsewhere."""
