"""What every page's template may show."""

from django.conf import settings
from django.http import HttpRequest


def support(request: HttpRequest) -> dict[str, str]:
    """FLIXLY_SUPPORT_EMAIL: where a user stuck without an e-mail, or without credits, can write."""
    return {"support_email": settings.FLIXLY_SUPPORT_EMAIL}
