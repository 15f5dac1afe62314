from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"nav": "keys", "title": "API Keys", "feature": "API keys"})
