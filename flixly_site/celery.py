"""The Celery application: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flixly_site.settings")

app = Celery("flixly")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "clear-expired-sessions": {
        "task": "accounts.tasks.clear_expired_sessions",
        "schedule": crontab(minute=17, hour=3),
    },
    "reap-jobs": {"task": "generation.tasks.reap_jobs", "schedule": 30.0},
    "resend-webhooks": {"task": "generation.tasks.resend_webhooks", "schedule": 30.0},
    "release-idempotency-keys": {"task": "generation.tasks.release_idempotency_keys", "schedule": crontab(minute=41)},
    "key-expiry-reminders": {
        "task": "accounts.tasks.send_key_expiry_reminders",
        "schedule": crontab(minute=5),
    },
}
