from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed_plans(sender, **kwargs) -> None:
    from accounts.services import plan_seed_defaults

    plan_seed_defaults()


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users, keys and plans"  # allauth's e-mail addresses are the console's "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Like django.contrib.sites' default site: every database (and every flushed test database)
        # has the plans new accounts point at.
        post_migrate.connect(_seed_plans, sender=self)
        from django.core import checks

        from accounts.checks import limits_are_shared, mail_is_sent

        checks.register(mail_is_sent, checks.Tags.security, deploy=True)
        checks.register(limits_are_shared, checks.Tags.security, deploy=True)
        import accounts.schema  # noqa: F401  (registers the OpenAPI auth extensions)
