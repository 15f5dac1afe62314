import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

pytestmark = pytest.mark.django_db

PASSWORD = "Quiet-Lake-4512"


@pytest.fixture
def verified(django_user_model):
    user = django_user_model.objects.create_user(email="old@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def test_a_new_address_is_asked_to_confirm_a_change_of_address_not_a_sign_up(client, verified):
    # It read "this address was given to register an account": its owner (maybe not the account's) was misled.
    client.force_login(verified)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    client.post("/accounts/email/", {"action_add": "", "email": "new@example.com"})
    (message,) = mail.outbox
    assert message.to == ["new@example.com"]
    assert "register" not in message.body
    assert "new e-mail address of a Flixly account" in message.body
    assert "/accounts/confirm-email/" in message.body


def test_an_unverified_account_that_logs_in_is_sent_the_sign_up_text(client, django_user_model):
    # allauth sends this one without its sign-up flag: it still confirms the address the account signed up with.
    django_user_model.objects.create_user(email="held@example.com", password=PASSWORD)
    client.post("/accounts/login/", {"login": "held@example.com", "password": PASSWORD})
    (message,) = mail.outbox
    assert "to register an account on Flixly." in message.body


def test_changing_the_address_asks_for_the_password_again(client, verified):
    # Anyone at an open session could otherwise move the login to their own address and take the account.
    client.post("/accounts/login/", {"login": verified.email, "password": PASSWORD})
    response = client.post("/accounts/email/", {"action_add": "", "email": "thief@example.com"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/reauthenticate/")
    assert not mail.outbox and not EmailAddress.objects.filter(email="thief@example.com").exists()


def test_with_the_password_given_again_the_address_changes(client, verified):
    client.force_login(verified)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    response = client.post("/accounts/email/", {"action_add": "", "email": "new@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/email/"
    assert EmailAddress.objects.filter(user=verified, email="new@example.com").exists()


def test_a_password_reset_for_an_unknown_address_sends_nothing(client):
    # Else anyone could make this server e-mail any address ("Unknown Account"), at the sender's reputation.
    response = client.post("/accounts/password/reset/", {"email": "stranger@example.com"})
    assert response.status_code == 302  # the same answer as for a known address: no account enumeration
    assert not mail.outbox


def test_a_refused_address_is_tied_to_its_field_and_summed_up_in_a_focused_alert(client, verified):
    # The error sat above the label, tied to nothing, and the page came back with the focus at its top.
    client.force_login(verified)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.post("/accounts/email/", {"action_add": "", "email": verified.email}).content.decode()
    field = re.search(r'<input type="email" name="email"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="id_email_error"' in field
    assert '<ul class="errorlist" id="id_email_error">' in page
    assert re.search(r'id="error-summary" role="alert" tabindex="-1" autofocus>', page)
