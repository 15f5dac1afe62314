from django.urls import path

from accounts import views

urlpatterns = [
    path("settings/api-keys/", views.api_keys, name="api-keys"),
    path("settings/api-keys/<uuid:key_id>/roll/", views.api_key_roll, name="api-key-roll-page"),
    path("settings/api-keys/<uuid:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke-page"),
]
