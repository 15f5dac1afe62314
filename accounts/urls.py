from django.urls import path

from accounts import views

urlpatterns = [
    path("settings/api-keys/", views.api_keys, name="api-keys"),
]
