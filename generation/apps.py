import mimetypes

from django.apps import AppConfig


def _stop_jobs(sender, user, **kwargs) -> None:
    from generation.services import jobs_stop_for_owner

    jobs_stop_for_owner(user_id=user.pk)


class GenerationConfig(AppConfig):
    name = "generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from accounts.signals import account_deactivated
        from generation.checks import extra_providers_import, outbound_guard_on

        account_deactivated.connect(_stop_jobs, dispatch_uid="generation-stop-jobs")
        checks.register(extra_providers_import)
        checks.register(outbound_guard_on, checks.Tags.security, deploy=True)
        # Python guesses audio/x-wav for .wav; the jobs name their WAV outputs audio/wav, and a download
        # must say the same.
        mimetypes.add_type("audio/wav", ".wav")
