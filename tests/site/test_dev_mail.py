"""Without EMAIL_URL, e-mails go to the web process's output in a form a person can copy a link from."""

import io

from django.core.mail import EmailMultiAlternatives

from flixly_site.mail import ReadableConsoleBackend

LINK = "http://127.0.0.1:8400/accounts/confirm-email/Mw:1xVctR:tbPZbXeOsHi6Vv7MSUq8hrxlxmky1XVGxNgOVxYWBLM/"


def test_a_long_link_is_printed_whole_with_the_addressing_headers():
    stream = io.StringIO()
    message = EmailMultiAlternatives(
        "[Flixly] Please Confirm Your Email Address",
        f"Hello from Flixly — to confirm, go to {LINK}\n",
        "Flixly <no-reply@flixly.local>",
        ["newbie@example.com"],
    )
    message.attach_alternative(f'<a href="{LINK}">Confirm</a>', "text/html")
    assert ReadableConsoleBackend(stream=stream).send_messages([message]) == 1
    printed = stream.getvalue()
    assert f"Hello from Flixly — to confirm, go to {LINK}\n" in printed
    assert "Subject: [Flixly] Please Confirm Your Email Address\n" in printed
    assert "To: newbie@example.com\n" in printed
    assert "=\n" not in printed and "<a href" not in printed


def test_the_development_settings_use_it():
    from tests.site.test_settings import run_manage

    done = run_manage("shell", "-c", "from django.conf import settings; print(settings.MAILERS)", env={})
    assert "flixly_site.mail.ReadableConsoleBackend" in done.stdout, done.stderr
