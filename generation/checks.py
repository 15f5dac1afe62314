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


def outbound_guard_on(app_configs, **kwargs) -> list[checks.Warning]:
    """The SSRF guard's relaxations are for loopback fakes in development: in production they let a user's
    imageUrl or webhook reach this server's own network."""
    names = ("FLIXLY_OUTBOUND_ALLOW_HTTP", "FLIXLY_OUTBOUND_ALLOW_PRIVATE")
    message = "{} is on: user-supplied URLs are not fully guarded."
    return [
        checks.Warning(message.format(name), hint="Unset it.", id="flixly.W002")
        for name in names
        if getattr(settings, name)
    ]
