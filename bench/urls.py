"""Mounted under /bench/ when FLIXLY_BENCH_ENDPOINTS=true (flixly_site/urls.py)."""

from django.urls import path

from bench import views

urlpatterns = [
    path("bare", views.BareApi.as_view(), name="bench-bare"),
    path("minimal-submit", views.MinimalSubmitApi.as_view(), name="bench-minimal-submit"),
]
