from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from billing.models import CreditPack, LedgerEntry
from billing.services import MAX_CREDITS_PER_MOVEMENT, wallet_adjust, wallet_balance

pytestmark = pytest.mark.django_db


def test_grant_credits_above_the_maximum_is_a_command_error_not_a_traceback(user):
    wallet_adjust(user_id=user.pk, amount=10, reason="start")
    with pytest.raises(CommandError, match=f"at most {MAX_CREDITS_PER_MOVEMENT:,} credits"):
        call_command("grant_credits", "--email", user.email, "--amount", "99999999999999999999", "--reason", "Typo")
    assert wallet_balance(user_id=user.pk) == 10
    assert LedgerEntry.objects.filter(user=user).count() == 1


def test_create_api_key_with_too_many_credits_creates_nothing(settings):
    settings.FLIXLY_SIGNUP_BONUS = 0
    with pytest.raises(CommandError, match=f"at most {MAX_CREDITS_PER_MOVEMENT:,} credits"):
        call_command("create_api_key", "--email", "cli@example.com", "--create-user", "--credits", str(10**20))
    assert not User.objects.filter(email="cli@example.com").exists()


@pytest.mark.parametrize("email", ["bad-email", "a@b@c.example", "x" * 250 + "@example.com"])
def test_create_api_key_refuses_an_address_that_is_not_an_email(email):
    with pytest.raises(CommandError, match="not a valid e-mail address"):
        call_command("create_api_key", "--email", email, "--create-user")
    assert not User.objects.exists()


def test_create_api_key_refuses_a_blank_name(user):
    with pytest.raises(CommandError, match="--name"):
        call_command("create_api_key", "--email", user.email, "--name", "  ")
    assert not user.api_keys.exists()


@pytest.mark.parametrize("name", ["n" * 101, "a\x00b"])
def test_create_api_key_refuses_a_name_the_column_cannot_hold(user, name):
    with pytest.raises(CommandError, match="At most 100 characters"):
        call_command("create_api_key", "--email", user.email, "--name", name)
    assert not user.api_keys.exists()


def test_seed_credit_packs_gives_a_fresh_shop_the_default_packs():
    call_command("seed_credit_packs", stdout=StringIO())
    assert list(CreditPack.objects.values_list("name", "credits", "price_cents")) == [
        ("Starter", 500, 500),
        ("Creator", 2200, 2000),
        ("Studio", 6000, 5000),
    ]


def test_a_second_seeding_keeps_what_staff_changed():
    call_command("seed_credit_packs", stdout=StringIO())
    CreditPack.objects.filter(name="Starter").update(name="Basic", price_cents=700, stripe_price_id="price_basic")
    CreditPack.objects.filter(name="Studio").delete()
    out = StringIO()
    call_command("seed_credit_packs", stdout=out)
    assert list(CreditPack.objects.values_list("name", "price_cents", "stripe_price_id")) == [
        ("Basic", 700, "price_basic"),
        ("Creator", 2000, ""),
    ]
    assert "left as they are" in out.getvalue()
