"""The development mailer (no EMAIL_URL): messages printed readably to the web process's output."""

from django.core.mail import EmailMessage
from django.core.mail.backends import console


class ReadableConsoleBackend(console.EmailBackend):
    """Each message's addressing headers and its plain-text body as written, so a verification link can
    be copied from the log: Django's console backend prints the MIME source, where quoted-printable
    breaks every line over 76 characters with a trailing "="."""

    HEADERS = ("Subject", "From", "To", "Cc", "Reply-To", "Date")

    def write_message(self, message: EmailMessage) -> None:
        source = message.message()
        headers = "".join(f"{name}: {source[name]}\n" for name in self.HEADERS if source[name])
        self.stream.write(f"{headers}\n{message.body}\n{'-' * 79}\n")
