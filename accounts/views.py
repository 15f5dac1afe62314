from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from accounts.forms import ApiKeyCreateForm, ApiKeyRollForm
from accounts.models import ApiKey
from accounts.selectors import apikey_get, apikey_grace_until, apikey_list_for_page, apikey_status
from accounts.services import IssuedKey, apikey_create, apikey_revoke, apikey_roll
from flixly_site.errors import ApplicationError
from flixly_site.forms import add_api_errors, form_sent_twice, form_token_release


def _keys_page(request: HttpRequest, form: ApiKeyCreateForm) -> HttpResponse:
    keys = [(key, apikey_status(api_key=key)) for key in apikey_list_for_page(user=request.user)]
    return render(request, "accounts/api_keys.html", {"nav": "keys", "keys": keys, "form": form})


def _show_secret(request: HttpRequest, issued: IssuedKey, action: str) -> HttpResponse:
    response = render(request, "accounts/key_secret.html", {"nav": "keys", "issued": issued, "action": action})
    add_never_cache_headers(response)  # Back or a shared cache must never bring the secret back
    return response


def _sent_twice(request: HttpRequest, form) -> HttpResponse | None:
    note = "A key's secret is shown once: if you did not copy it, roll the key."
    return form_sent_twice(request, form, secret_note=note, page="api-keys")


def _owned_or_404(request: HttpRequest, key_id) -> ApiKey:
    api_key = apikey_get(user=request.user, key_id=key_id)
    if api_key is None:
        raise Http404("No such key")
    return api_key


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if resent := _sent_twice(request, form):
            return resent
        settings = {name: value for name, value in form.cleaned_data.items() if name != "once"}
        try:
            issued = apikey_create(user=request.user, **settings)
        except ApplicationError as error:
            _form_error(request, form, error)
        else:
            return _show_secret(request, issued, "created")
    return _keys_page(request, form)


def _form_error(request: HttpRequest, form: forms.Form, error: ApplicationError) -> None:
    add_api_errors(form, error)
    form_token_release(request, form)


def _already_revoked(request: HttpRequest, api_key: ApiKey) -> HttpResponse:
    messages.info(request, f"Key {api_key.name} ({api_key.masked}) is already revoked: it cannot be used again.")
    return redirect("api-keys")


@login_required
@require_http_methods(["GET", "POST"])
def api_key_roll(request: HttpRequest, key_id) -> HttpResponse:
    api_key = _owned_or_404(request, key_id)
    if request.method == "GET" and api_key.revoked_at is not None:
        return _already_revoked(request, api_key)
    form = ApiKeyRollForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if resent := _sent_twice(request, form):
            return resent
        try:
            issued = apikey_roll(user=request.user, key_id=api_key.id, grace_hours=form.cleaned_data["grace_hours"])
        except ApplicationError as error:  # revoked meanwhile (a stale tab)
            _form_error(request, form, error)
        else:
            return _show_secret(request, issued, "rolled")
    context = {"nav": "keys", "api_key": api_key, "form": form, "grace_until": apikey_grace_until(api_key=api_key)}
    return render(request, "accounts/key_roll.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def api_key_revoke(request: HttpRequest, key_id) -> HttpResponse:
    api_key = _owned_or_404(request, key_id)
    if api_key.revoked_at is not None:
        return _already_revoked(request, api_key)
    if request.method == "POST":
        apikey_revoke(user=request.user, key_id=api_key.id)
        messages.success(request, f"Key {api_key.name} ({api_key.masked}) is revoked. It stopped working immediately.")
        return redirect("api-keys")
    return render(request, "accounts/key_revoke.html", {"nav": "keys", "api_key": api_key})
