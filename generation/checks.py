"""System checks (`manage.py check`, and `migrate`, which `make run` runs first)."""

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string


def extra_providers_import(app_configs, **kwargs) -> list[checks.Error]:
    """Each FLIXLY_EXTRA_PROVIDERS route names a class that imports: else its jobs would fail one by one."""
    errors = []
    for route, path in settings.FLIXLY_EXTRA_PROVIDERS.items():
        try:
            import_string(path)
        except ImportError as error:
            message = f"FLIXLY_EXTRA_PROVIDERS: route {route!r} names {path}, which cannot be imported ({error})."
            errors.append(checks.Error(message, id="flixly.E001"))
    return errors
