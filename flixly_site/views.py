"""Pages that compose several apps: the landing page, the dashboard and the docs."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.selectors import apikey_list
from billing.selectors import wallet_for
from generation.selectors import jobs_for


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
        "recent_jobs": jobs_for(user=request.user, filters={}).order_by("-created_at")[:5],
        "key_count": apikey_list(user=request.user).filter(revoked_at__isnull=True).count(),
    }
    return render(request, "dashboard/index.html", context)


def docs(request: HttpRequest) -> HttpResponse:
    return render(request, "docs.html", {"nav": "docs"})
