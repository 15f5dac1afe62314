import mimetypes

from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from generation.checks import extra_providers_import, outbound_guard_on

        checks.register(extra_providers_import)
        checks.register(outbound_guard_on, checks.Tags.security, deploy=True)
        # Python guesses audio/x-wav for .wav; the jobs name their WAV outputs audio/wav, and a download
        # must say the same.
        mimetypes.add_type("audio/wav", ".wav")
