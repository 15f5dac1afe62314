from django.apps import AppConfig
from django.db import transaction


def _grant_signup_bonus(sender, request, user, **kwargs) -> None:
    from billing.services import wallet_signup_bonus

    wallet_signup_bonus(user_id=user.pk)


def _sync_stripe_email(sender, user, **kwargs) -> None:
    from billing.stripe_gateway import payments_enabled
    from billing.tasks import stripe_customer_email_sync

    if payments_enabled():
        # robust: a broker that is down must not undo the change of address
        transaction.on_commit(lambda: stripe_customer_email_sync.delay(user.pk), robust=True)


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.account.signals import email_changed, user_signed_up

        # billing reacts to accounts' sign-up and changes of address; accounts never imports billing.
        user_signed_up.connect(_grant_signup_bonus, dispatch_uid="billing-signup-bonus")
        email_changed.connect(_sync_stripe_email, dispatch_uid="billing-stripe-email")
