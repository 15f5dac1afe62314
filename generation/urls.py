from django.urls import path

from generation import views

urlpatterns = [
    path("generate/", views.generate, name="generate"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/export/", views.jobs_export, name="jobs-export"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/cancel/", views.cancel_job, name="job-cancel"),
    path("settings/webhooks/", views.webhooks, name="webhooks"),
    path("settings/webhooks/test/", views.webhook_test, name="webhook-test"),
    path("settings/webhooks/remove/", views.webhook_remove, name="webhook-remove"),
    path("outputs/<str:token>/<str:filename>", views.output_file, name="job-output"),
]
