from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from flixly_site import views
from flixly_site.api import HealthApi
from generation.api.urls import openai_urlpatterns

api_v1 = [
    path("health", HealthApi.as_view(), name="api-health"),
    path("schema", views.ApiSchemaView.as_view(), name="api-schema"),
    path("", include("accounts.api.urls")),
    path("", include("billing.api.urls")),
    path("", include("generation.api.urls")),
]

admin.site.site_header = admin.site.site_title = "Flixly admin"
admin.site.login = secure_admin_login(admin.site.login)  # through allauth's login, with its failure limits
admin.site.index_title = "Staff console"

urlpatterns = [
    path("api/v1/", include(api_v1)),  # first: every API call then resolves without trying the pages
    path("openai/v1/", include(openai_urlpatterns)),
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("docs/", views.docs, name="docs"),
    path("accounts/", include("allauth.urls")),
    # The developer guide Flixly started from sends people to /auth/login: that address keeps working.
    path("auth/login/", RedirectView.as_view(pattern_name="account_login", query_string=True)),
    path("", include("accounts.urls")),
    path("", include("billing.urls")),
    path("", include("generation.urls")),
    path("admin/", admin.site.urls),
    path("api/docs", views.ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
]

if settings.FLIXLY_BENCH_ENDPOINTS:
    urlpatterns.insert(1, path("bench/", include("bench.urls")))

handler400 = "flixly_site.errors.handler400"
handler403 = "flixly_site.errors.handler403"
handler404 = "flixly_site.errors.handler404"
handler500 = "flixly_site.errors.handler500"
