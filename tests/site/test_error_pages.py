"""Error pages are Flixly's: a plain message and a way home, nothing about the request or the failure. Under
/api/ and /openai/ errors stay JSON."""

import re
from http import HTTPStatus

import pytest
from django.core.exceptions import PermissionDenied
from django.template import loader
from django.test import Client
from django.urls import include, path


def crash(request):
    raise RuntimeError("secret internals /etc/passwd")


def forbidden(request):
    raise PermissionDenied("secret reason /etc/shadow")


urlpatterns = [
    path("crash/", crash),
    path("forbidden/", forbidden),
    path("api/v1/crash", crash),
    path("", include("flixly_site.urls")),
]
# As flixly_site.urls sets them.
handler400 = "flixly_site.errors.handler400"
handler403 = "flixly_site.errors.handler403"
handler404 = "flixly_site.errors.handler404"
handler500 = "flixly_site.errors.handler500"

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def _production_mode(settings):
    settings.DEBUG = False


def assert_branded_page(response, status: int, heading: str) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert "Content-Security-Policy" in response
    page = response.content.decode()
    assert re.search(rf"<h1>{heading}</h1>", page), page
    assert "<title>" in page and "Flixly" in page
    assert re.search(r'<a [^>]*href="/"[^>]*>Go to the home page</a>', page)
    return page


def test_an_unknown_page_is_a_branded_404_that_does_not_repeat_the_address(client):
    page = assert_branded_page(client.get("/no-such-page-xyz/"), HTTPStatus.NOT_FOUND, "Page not found")
    assert "no-such-page-xyz" not in page and "Resolver404" not in page
    assert 'href="/static/css/site.css"' in page  # the site's own layout


def test_a_signed_in_reader_keeps_the_site_navigation_on_a_404(client, user):
    client.force_login(user)
    page = assert_branded_page(client.get("/no-such-page/"), HTTPStatus.NOT_FOUND, "Page not found")
    assert 'href="/dashboard/"' in page and user.email in page


def test_an_unknown_api_path_is_still_a_json_404(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["error"]["code"] == "not_found"
    assert client.get("/openai/v1/nope").json()["error"]["code"] == "not_found"


def test_a_crash_is_a_branded_500_that_names_nothing_internal(client):
    client.raise_request_exception = False
    page = assert_branded_page(client.get("/crash/"), HTTPStatus.INTERNAL_SERVER_ERROR, "Something went wrong")
    assert "passwd" not in page and "RuntimeError" not in page and "Traceback" not in page


def test_a_crash_under_the_api_is_still_json(client):
    client.raise_request_exception = False
    response = client.get("/api/v1/crash")
    assert response.json()["error"]["code"] == "internal_error"


def test_the_500_page_renders_without_a_request_or_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        page = loader.get_template("500.html").render()
    assert "Something went wrong" in page and 'href="/"' in page
    assert "{%" not in page and "<script" not in page and "style=" not in page


def test_a_forbidden_page_is_a_branded_403_without_the_reason(client):
    page = assert_branded_page(client.get("/forbidden/"), HTTPStatus.FORBIDDEN, "You cannot open this page")
    assert "shadow" not in page and "secret reason" not in page


def test_an_unknown_host_is_a_branded_400_that_does_not_repeat_it(client):
    response = client.get("/", HTTP_HOST="evil.example.com")
    page = assert_branded_page(response, HTTPStatus.BAD_REQUEST, "Bad request")
    assert "evil.example.com" not in page and "ALLOWED_HOSTS" not in page


def test_a_form_sent_without_its_csrf_token_is_a_branded_403_that_says_what_to_do(user):
    form = {"login": user.email, "password": "correct horse battery"}
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", form)
    page = assert_branded_page(response, HTTPStatus.FORBIDDEN, "This form has expired")
    assert "reload" in page
    assert "CSRF cookie not set" not in page and "DEBUG" not in page


def test_a_form_sent_to_the_api_without_its_csrf_token_is_still_json(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/v1/keys", {"name": "x"})
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["status"] == response.status_code
