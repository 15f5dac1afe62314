from django.apps import AppConfig


def _grant_signup_bonus(sender, request, user, **kwargs) -> None:
    from billing.services import wallet_signup_bonus

    wallet_signup_bonus(user_id=user.pk)


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.account.signals import user_signed_up

        # billing reacts to accounts' sign-up; accounts never imports billing.
        user_signed_up.connect(_grant_signup_bonus, dispatch_uid="billing-signup-bonus")
