from django.urls import path

from generation import views

urlpatterns = [
    path("generate/", views.generate, name="generate"),
    path("jobs/", views.jobs, name="jobs"),
    path("outputs/<str:token>/<str:filename>", views.output_file, name="job-output"),
]
