from celery import shared_task
from django.core.management import call_command

from accounts.services import apikey_send_expiry_reminders


@shared_task
def clear_expired_sessions() -> None:
    call_command("clearsessions")


@shared_task
def send_key_expiry_reminders() -> int:
    return apikey_send_expiry_reminders()
