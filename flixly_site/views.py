"""Pages that compose several apps: the landing page, the dashboard and the docs."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/index.html", {"nav": "dashboard"})


def docs(request: HttpRequest) -> HttpResponse:
    return render(request, "docs.html", {"nav": "docs"})
