"""The Celery application: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.schedules import crontab
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flixly_site.settings")

# kombu picks a broker's transport by its URL's scheme from this table: ours (flixly_site/broker.py) take
# the place of kombu's own for these schemes, whatever the broker URL is set to, even at run time.
TRANSPORT_ALIASES.update(
    filesystem="flixly_site.broker:FilesystemTransport",
    redis="flixly_site.broker:Transport",
    rediss="flixly_site.broker:Transport",
)

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
    "forget-worker-nodes": {"task": "generation.tasks.forget_worker_nodes", "schedule": crontab(minute=53, hour=4)},
    "key-expiry-reminders": {
        "task": "accounts.tasks.send_key_expiry_reminders",
        "schedule": crontab(minute=5),
    },
}
