"""Deploy checks (`manage.py check --deploy`) for development settings left on in production."""

from email.utils import parseaddr

from django.conf import settings
from django.core import checks

# Domains no mail server delivers for (RFC 2606, RFC 6761, mDNS): mail from them is refused or marked spam.
UNDELIVERABLE_DOMAINS = (".local", ".localhost", ".test", ".example", ".invalid", ".internal")


def mail_is_sent(app_configs, **kwargs) -> list[checks.Warning]:
    """Without EMAIL_URL, sign-up confirmations and password resets are printed to the web log: no customer
    would ever receive one. From a domain that is no one's, they would be refused or filed as spam."""
    warnings = []
    if not settings.EMAIL_URL:
        hint = "Set EMAIL_URL, e.g. submission://user:pass@smtp.example.com:587."
        warnings.append(
            checks.Warning("EMAIL_URL is not set: e-mails are printed to the log.", hint=hint, id="flixly.W001")
        )
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2].lower()
    if "." not in domain or domain.endswith(UNDELIVERABLE_DOMAINS):
        message = f"DEFAULT_FROM_EMAIL sends from {domain or 'no domain'}, which no mail server delivers for."
        hint = "Set DEFAULT_FROM_EMAIL to an address of your domain, e.g. Flixly <no-reply@flixly.example.com>."
        warnings.append(checks.Warning(message, hint=hint, id="flixly.W003"))
    return warnings


def limits_are_shared(app_configs, **kwargs) -> list[checks.Warning]:
    """Without Redis the cache is each process's own memory: every gunicorn worker counts its own rate and
    login limits (so a plan's limit is multiplied by the workers), and a restart forgets them."""
    if settings.REDIS_URL:
        return []
    hint = "Set REDIS_URL, e.g. redis://redis:6379/0 (also the Celery broker)."
    message = "REDIS_URL is not set: rate limits and login limits are counted in each process."
    return [checks.Warning(message, hint=hint, id="flixly.W004")]
