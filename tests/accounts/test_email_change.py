"""The e-mail settings page: a new address waits for its confirmation; a refused one is said at the top of
the form and tied to its field."""

import re
from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.force_login(user)
    return client


def test_a_new_address_is_sent_a_confirmation_link(signed_in, mailoutbox):
    response = signed_in.post("/accounts/email/", {"action_add": "", "email": "ada.new@example.com"})
    assert response.status_code == HTTPStatus.FOUND
    assert [message.to for message in mailoutbox] == [["ada.new@example.com"]]
    assert EmailAddress.objects.filter(email="ada.new@example.com", verified=False).exists()


def test_a_refused_address_is_tied_to_its_field_and_summed_up_in_a_focused_alert(signed_in, user):
    # The error sat above the label, tied to nothing, and the page came back with the focus at its top.
    page = signed_in.post("/accounts/email/", {"action_add": "", "email": user.email}).content.decode()
    field = re.search(r'<input type="email" name="email"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="id_email_error"' in field
    assert '<ul class="errorlist" id="id_email_error">' in page
    assert re.search(r'id="error-summary" role="alert" tabindex="-1" autofocus>', page)
