from django.urls import path

from accounts.api import views

urlpatterns = [
    path("keys", views.ApiKeyListCreateApi.as_view(), name="api-v1-keys"),
    path("keys/<str:id>/roll", views.ApiKeyRollApi.as_view(), name="api-v1-key-roll"),
    path("keys/<str:id>", views.ApiKeyRevokeApi.as_view(), name="api-v1-key-revoke"),
]
