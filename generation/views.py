from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def generate(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"nav": "generate", "title": "Generate", "feature": "Generation"})


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"nav": "jobs", "title": "Jobs", "feature": "Job history"})
