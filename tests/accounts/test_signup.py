import re
from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import mail

pytestmark = pytest.mark.django_db

PASSWORD = "Quiet-Lake-4512"


def sign_up(client, email: str = "new@example.com"):
    return client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})


def confirmation_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+)", message.body).group(1)


def test_sign_up_creates_an_account_whose_login_is_the_email(client, django_user_model):
    sign_up(client, "New@Example.com")
    user = django_user_model.objects.get()
    assert user.email == "new@example.com"
    assert not hasattr(user, "username") or user.username is None


def test_sign_up_sends_a_verification_link(client):
    sign_up(client)
    assert len(mail.outbox) == 1
    assert "/accounts/confirm-email/" in mail.outbox[0].body
    assert mail.outbox[0].body.startswith("Hello from Flixly!")  # the product, not the request's host
    assert mail.outbox[0].subject.startswith("[Flixly] ")


def test_login_before_verification_is_held_at_the_verification_page(client, django_user_model):
    django_user_model.objects.create_user(email="held@example.com", password=PASSWORD)
    response = client.post("/accounts/login/", {"login": "held@example.com", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/accounts/confirm-email/"
    assert client.get("/dashboard/").status_code == HTTPStatus.FOUND


def test_following_the_link_verifies_and_opens_the_dashboard(client):
    sign_up(client)
    link = confirmation_link(mail.outbox[0])
    client.post(link)
    assert EmailAddress.objects.get(email="new@example.com").verified
    response = client.get("/dashboard/")
    assert response.status_code == HTTPStatus.OK
    assert b"new@example.com" in response.content


def test_a_link_followed_again_after_confirming_says_to_log_in(client):
    sign_up(client)
    link = confirmation_link(mail.outbox[0])
    client.post(link)
    client.logout()
    page = client.get(link).content.decode()
    assert "has already been used" in page and 'href="/accounts/login/"' in page


def test_verified_user_logs_in_with_email_and_password(client, django_user_model):
    user = django_user_model.objects.create_user(email="v@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    response = client.post("/accounts/login/", {"login": "v@example.com", "password": PASSWORD})
    assert response["Location"] == "/dashboard/"


def test_password_reset_sends_a_link(client, user):
    client.post("/accounts/password/reset/", {"email": user.email})
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_a_password_reset_ends_with_a_way_to_log_in(client, user):
    client.post("/accounts/password/reset/", {"email": user.email})
    link = re.search(r"http://\S+/accounts/password/reset/key/\S+", mail.outbox[0].body).group(0)
    form_page = client.get(link, follow=True)
    new = "a new correct horse 42"
    done = client.post(form_page.redirect_chain[-1][0], {"password1": new, "password2": new}, follow=True)
    page = done.content.decode()
    assert "Your password is now changed." in page and '<a href="/accounts/login/">Log in with it</a>' in page


def test_duplicate_email_in_other_case_makes_no_second_account(client, user, django_user_model):
    # allauth prevents account enumeration: the page looks the same, the owner gets a warning mail.
    sign_up(client, "ADA@example.com")
    assert django_user_model.objects.count() == 1
    assert mail.outbox[0].to == ["ada@example.com"]


def test_login_rate_limits_are_on():
    assert getattr(settings, "ACCOUNT_RATE_LIMITS", None) is not False


def test_dashboard_requires_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")


def test_admin_is_for_staff_only(client, user, staff_user):
    client.force_login(user)
    assert client.get("/admin/").status_code == HTTPStatus.FOUND
    client.force_login(staff_user)
    assert client.get("/admin/").status_code == HTTPStatus.OK


@pytest.mark.parametrize("path", ["/", "/docs/", "/accounts/login/", "/accounts/signup/"])
def test_public_pages_render(client, path):
    assert client.get(path).status_code == HTTPStatus.OK


@pytest.mark.parametrize("path", ["/dashboard/", "/generate/", "/jobs/", "/settings/api-keys/", "/billing/"])
def test_dashboard_pages_render_for_a_signed_in_user(client, user, path):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == HTTPStatus.OK
    assert b'aria-current="page"' in response.content


def test_an_address_longer_than_an_account_can_hold_is_refused_not_cut_short(client, django_user_model):
    # It was cut to 254 characters, and the verification e-mail went to that other address.
    response = sign_up(client, "x" * 250 + "@example.com")
    assert response.status_code == HTTPStatus.OK
    assert "at most 254 characters" in response.content.decode()
    assert not django_user_model.objects.exists()
    assert mail.outbox == []


def test_a_superuser_made_at_the_terminal_can_sign_in_to_the_site_and_finds_the_admin(client, monkeypatch):
    # Its operator typed the address: it was held at "Verify your e-mail address", with no link to the admin.
    from django.core.management import call_command

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", email="boss@example.com", interactive=False, verbosity=0)
    response = client.post("/accounts/login/", {"login": "boss@example.com", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] != "/accounts/confirm-email/"
    assert 'href="/admin/"' in client.get("/dashboard/").content.decode()


def test_the_admin_link_is_for_staff_only(client, django_user_model):
    user = django_user_model.objects.create_user(email="plain@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.force_login(user)
    assert 'href="/admin/"' not in client.get("/dashboard/").content.decode()


def test_login_rate_limits_count_the_address_the_proxy_saw_not_the_one_the_client_claims(rf, settings):
    from allauth.account.adapter import get_adapter

    settings.FLIXLY_BEHIND_PROXY = True
    request = rf.post("/accounts/login/", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.5")
    assert get_adapter(request).get_client_ip(request) == "203.0.113.5"


def test_a_changed_password_is_told_to_the_account_by_e_mail(client, user):
    EmailAddress.objects.get_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    client.force_login(user)
    new = "a new correct horse 42"
    client.post(
        "/accounts/password/change/", {"oldpassword": "correct horse battery", "password1": new, "password2": new}
    )
    assert [message.to for message in mail.outbox] == [[user.email]]
    assert "password" in mail.outbox[0].subject.lower()


@pytest.mark.parametrize("path", ["/auth/login", "/auth/login/", "/auth/login/?next=/settings/api-keys/"])
def test_the_login_address_the_developer_guide_gives_leads_to_the_login_page(client, path):
    response = client.get(path, follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "next=/settings/api-keys/" in response.redirect_chain[-1][0] or "next" not in path


def test_the_admin_signs_in_through_the_rate_limited_login(client, django_user_model):
    # Django's own admin login counts no failures: a staff password could be guessed without limit.
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    django_user_model.objects.create_superuser(email="boss@example.com", password="correct horse battery")
    signed_in = client.post(
        "/accounts/login/?next=/admin/", {"login": "boss@example.com", "password": "correct horse battery"}
    )
    assert signed_in["Location"] == "/admin/" and client.get("/admin/").status_code == 200


def field_blocks(page: str) -> list[str]:
    """Each field's markup, up to the next field's."""
    return page.split('<div class="field">')[1:]


def test_a_password_error_sits_with_the_password_field_not_under_the_email(client):
    # Django's as_p put each error above the next field's label: under Email, above Password.
    page = client.post("/accounts/signup/", {"email": "x@example.com", "password1": "short", "password2": "short"})
    page = page.content.decode()
    (password,) = [block for block in field_blocks(page) if 'name="password1"' in block]
    assert "This password is too short" in password
    (email,) = [block for block in field_blocks(page) if 'name="email"' in block]
    assert "errorlist" not in email


def test_an_error_follows_its_fields_input(client):
    page = client.post("/accounts/signup/", {"email": "not-an-address", "password1": PASSWORD, "password2": PASSWORD})
    (email,) = [block for block in field_blocks(page.content.decode()) if 'name="email"' in block]
    assert email.index("<label") < email.index('name="email"') < email.index("errorlist")


def test_the_confirm_page_asks_plainly_whether_the_address_is_yours(client):
    # It read "Please confirm that x@example.com is an email address for user x@example.com."
    sign_up(client, "x@example.com")
    page = client.get(confirmation_link(mail.outbox[0])).content.decode()
    assert "Confirm that x@example.com is your e-mail address." in page
    assert "for user" not in page


def closing_lines(message) -> list[str]:
    return [line for line in message.body.splitlines() if line.strip()][-2:]


def test_the_verification_mail_names_flixly_not_the_servers_host(client, settings):
    # It said "register an account on 127.0.0.1:8004" and signed off with the host.
    settings.SITE_URL = "http://127.0.0.1:8004"
    sign_up(client)
    body = mail.outbox[0].body
    assert "to register an account on Flixly." in body
    assert "127.0.0.1:8004\n" not in body and "on 127.0.0.1" not in body
    assert closing_lines(mail.outbox[0]) == ["Thank you for using Flixly!", "The Flixly team"]


def test_the_password_reset_mail_signs_off_as_flixly(client, user, settings):
    settings.SITE_URL = "http://127.0.0.1:8004"
    client.post("/accounts/password/reset/", {"email": user.email})
    assert mail.outbox[0].body.startswith("Hello from Flixly!")
    assert closing_lines(mail.outbox[0]) == ["Thank you for using Flixly!", "The Flixly team"]


def pages_that_say_whom_to_write_to(client) -> list[str]:
    sent = client.post(
        "/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD}, follow=True
    )
    reset = client.get("/accounts/password/reset/")
    reset_sent = client.post("/accounts/password/reset/", {"email": "new@example.com"}, follow=True)
    return [response.content.decode() for response in (sent, reset, reset_sent)]


def test_pages_that_say_to_write_if_no_e_mail_comes_give_the_support_address(client, settings):
    settings.FLIXLY_SUPPORT_EMAIL = "help@flixly.example"
    for page in pages_that_say_whom_to_write_to(client):
        assert 'href="mailto:help@flixly.example"' in page
        assert "contact us" not in page.lower()


def test_without_a_support_address_no_page_says_contact_us_with_no_way_to(client, settings):
    settings.FLIXLY_SUPPORT_EMAIL = ""
    sent, reset, reset_sent = pages_that_say_whom_to_write_to(client)
    for page in (sent, reset, reset_sent):
        assert "contact us" not in page.lower() and "mailto:" not in page
    assert "spam folder" in sent and "Reset My Password" in reset and "spam folder" in reset_sent
