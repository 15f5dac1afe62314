"""Form pieces shared by the dashboard's apps."""

import logging
import re
import secrets
from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from flixly_site.errors import ApplicationError

logger = logging.getLogger("flixly.forms")

FORM_TOKEN_SECONDS = 24 * 3600


class SubmitOnceField(forms.CharField):
    """A hidden token, new on every render of the form. A page that creates something on POST spends it
    with `form_token_spend`, so a reload, a Back-and-resubmit or a double click does not do it twice."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        kwargs.setdefault("initial", new_form_token)
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("error_messages", {"required": "This form has expired: reload the page and try again."})
        super().__init__(**kwargs)


def add_api_errors(form: forms.Form, error: ApplicationError, renamed: dict[str, str] | None = None) -> None:
    """A service's refusal on the form: each message of its details next to the field it names (the API's
    camelCase name in snake_case, or as `renamed` says), the rest on top."""
    for name, texts in (error.details or {"__all__": [error.message]}).items():
        field = form_field_name(name, renamed)
        form.add_error(field if field in form.fields else None, texts)


def form_field_name(name: str, renamed: dict[str, str] | None = None) -> str:
    """The form field an API field name stands for: as `renamed` says, else the name in snake_case."""
    return (renamed or {}).get(name) or re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def new_form_token() -> str:
    return secrets.token_urlsafe(18)


def form_token_renew(form: forms.Form) -> None:
    """A bound form shown again after an error gets a fresh token: the corrected form is a new send."""
    form.data = form.data.copy()
    form.data["once"] = new_form_token()


def _token_key(token: str, user_id: int) -> str:
    return f"form-token:{user_id}:{token}"


def form_token_spend(token: str, *, user_id: int) -> bool:
    """True the first time this user sends `token`; False for a form that was already sent."""
    try:
        return cache.add(_token_key(token, user_id), 1, FORM_TOKEN_SECONDS)
    except Exception:  # the cache is down: this guard is a convenience, the page itself must still work
        logger.warning("form token not checked: the cache is unavailable", exc_info=True)
        return True


def form_token_release(request: HttpRequest, form: forms.Form) -> None:
    """The service refused the form, so nothing was done: sending it again (a reload) is a new try and
    shows the refusal again, not "already sent"."""
    try:
        cache.delete(_token_key(form.cleaned_data["once"], request.user.pk))
    except Exception:  # the cache is down: then it could not have kept the token either
        logger.warning("form token not released: the cache is unavailable", exc_info=True)


def form_sent_twice(request: HttpRequest, form: forms.Form, *, page: str, secret_note: str = "") -> HttpResponse | None:
    """A form that was already sent (reload, Back and submit, double click): nothing is done again, and the
    user is sent back to `page` (a URL name or a path) told so, with `secret_note` on how to get a
    shown-once secret again."""
    if form_token_spend(form.cleaned_data["once"], user_id=request.user.pk):
        return None
    messages.info(request, f"That form was already sent, so nothing was done again. {secret_note}".strip())
    return redirect(page)


type View = Callable[..., HttpResponse]


def post_only_form(page: str, *, page_takes_arguments: bool = False) -> Callable[[View], View]:
    """For an address a form posts to and no page lives at: a GET or HEAD there (a reload after the post, a
    bookmark, a shared link) goes to `page`, the form's page, instead of the browser's bare 405. With
    `page_takes_arguments`, `page`'s URL takes the view's own arguments (a job's cancel goes back to the job).
    POST, and its CSRF check, are unchanged; other methods still get 405."""

    def decorate(view: View) -> View:
        @require_http_methods(["GET", "HEAD", "POST"])
        @wraps(view)
        def post_or_go_to_page(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                return view(request, *args, **kwargs)
            return redirect(page, *args, **kwargs) if page_takes_arguments else redirect(page)

        return post_or_go_to_page

    return decorate
