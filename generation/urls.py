from django.urls import path

from generation import views

urlpatterns = [
    path("generate/", views.generate, name="generate"),
    path("jobs/", views.jobs, name="jobs"),
]
