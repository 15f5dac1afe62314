"""Account events (a key rolled, a key about to expire, a balance that crossed the alert threshold) for
higher apps to act on: generation delivers them as webhooks. The handlers are named in settings, so
accounts and billing import nothing above them."""

import functools
from collections.abc import Callable

from django.conf import settings
from django.utils.module_loading import import_string


@functools.cache
def _handlers(paths: tuple[str, ...]) -> tuple[Callable[..., None], ...]:
    return tuple(import_string(path) for path in paths)


def account_event(*, user_id: int, event: str, data: dict) -> None:
    """Hand the event to every handler, inside the caller's transaction: what they record commits with it."""
    for handler in _handlers(tuple(settings.FLIXLY_ACCOUNT_EVENT_HANDLERS)):
        handler(user_id=user_id, event=event, data=data)
