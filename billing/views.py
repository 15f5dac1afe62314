from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def billing(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"nav": "billing", "title": "Billing", "feature": "Credits and billing"})
