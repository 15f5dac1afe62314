from django.urls import path

from generation.api import openai, views, webhooks

urlpatterns = [
    path("models", views.ModelListApi.as_view(), name="api-v1-models"),
    path("models/<str:id>", views.ModelDetailApi.as_view(), name="api-v1-model"),
    path("generate", views.GenerateApi.as_view(), name="api-v1-generate"),
    path("jobs", views.JobListApi.as_view(), name="api-v1-jobs"),
    path("jobs/export.csv", views.JobExportApi.as_view(), name="api-v1-jobs-export"),
    path("jobs/<str:jobId>", views.JobDetailApi.as_view(), name="api-v1-job"),
    path("jobs/<str:jobId>/cancel", views.JobCancelApi.as_view(), name="api-v1-job-cancel"),
    path("webhook", webhooks.WebhookApi.as_view(), name="api-v1-webhook"),
    path("webhook/test", webhooks.WebhookTestApi.as_view(), name="api-v1-webhook-test"),
    path("webhook/deliveries", webhooks.WebhookDeliveryListApi.as_view(), name="api-v1-webhook-deliveries"),
]

openai_urlpatterns = [
    path("models", openai.ModelsApi.as_view(), name="openai-models"),
    path("models/<str:id>", openai.ModelApi.as_view(), name="openai-model"),
    path("chat/completions", openai.ChatCompletionsApi.as_view(), name="openai-chat-completions"),
    path("images/generations", openai.ImageGenerationsApi.as_view(), name="openai-images-generations"),
    path("audio/speech", openai.SpeechApi.as_view(), name="openai-audio-speech"),
]
