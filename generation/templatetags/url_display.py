"""Showing long URLs (webhook endpoints and deliveries) so they wrap where a reader expects."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# After the scheme's // and after each later /, and before ? & #: never inside a host name or its port.
WRAP_POINTS = re.compile(r"(?<=/)(?!/)|(?=[?&#])")


@register.filter
def wrappable_url(url: str) -> SafeString:
    """The URL, escaped, with <wbr> where a line may break."""
    parts = [escape(part) for part in WRAP_POINTS.split(url) if part]
    return mark_safe("<wbr>".join(parts))  # noqa: S308 (each part is escaped; only the <wbr> tags are ours)
