"""Deploy checks (`manage.py check --deploy`) for development settings left on in production."""

from django.conf import settings
from django.core import checks


def mail_is_sent(app_configs, **kwargs) -> list[checks.Warning]:
    """Without EMAIL_URL, sign-up confirmations and password resets are printed to the web log: no customer
    would ever receive one."""
    if settings.EMAIL_URL:
        return []
    hint = "Set EMAIL_URL, e.g. submission://user:pass@smtp.example.com:587."
    return [checks.Warning("EMAIL_URL is not set: e-mails are printed to the log.", hint=hint, id="flixly.W001")]
