from django.urls import path

from billing.api import views

urlpatterns = [
    path("usage", views.UsageApi.as_view(), name="api-v1-usage"),
    path("credits/ledger", views.LedgerApi.as_view(), name="api-v1-ledger"),
]
