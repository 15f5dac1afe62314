"""Flixly's own e-mails, and the development mailer (no EMAIL_URL) that prints messages readably."""

from django.conf import settings
from django.core.mail import EmailMessage, send_mail
from django.core.mail.backends import console
from django.template.loader import render_to_string


def mail_user(*, to: str, subject: str, template: str, context: dict) -> None:
    """One plain-text e-mail from DEFAULT_FROM_EMAIL, its subject prefixed as allauth's are."""
    send_mail(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
        message=render_to_string(template, context),
        from_email=None,
        recipient_list=[to],
    )


class ReadableConsoleBackend(console.EmailBackend):
    """Each message's addressing headers and its plain-text body as written, so a verification link can
    be copied from the log: Django's console backend prints the MIME source, where quoted-printable
    breaks every line over 76 characters with a trailing "="."""

    HEADERS = ("Subject", "From", "To", "Cc", "Reply-To", "Date")

    def write_message(self, message: EmailMessage) -> None:
        source = message.message()
        headers = "".join(f"{name}: {source[name]}\n" for name in self.HEADERS if source[name])
        self.stream.write(f"{headers}\n{message.body}\n{'-' * 79}\n")
