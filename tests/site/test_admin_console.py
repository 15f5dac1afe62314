"""The staff console reads as Flixly's, with plain English names."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_console_is_named_flixly_and_names_its_models_in_plain_english(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    page = client.get("/admin/").content.decode()
    assert "Flixly admin" in page and "Django administration" not in page
    assert "Ledger entries" in page and "Webhook deliveries" in page
    assert "entrys" not in page and "deliverys" not in page


def test_each_section_of_the_console_has_its_own_name(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    page = client.get("/admin/").content.decode()
    assert page.count(">Accounts</a>") <= 1  # allauth's e-mail addresses keep "Accounts"
    assert "Users, keys and plans" in page


def test_api_keys_are_named_as_the_rest_of_the_product_names_them(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    page = client.get("/admin/").content.decode()
    assert ">API keys</a>" in page and "Api keys" not in page
