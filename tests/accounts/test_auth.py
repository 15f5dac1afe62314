import logging
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.core.management import call_command
from django.urls import include, path
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, Scope
from accounts.selectors import apikey_drop_cached
from accounts.services import apikey_revoke, apikey_roll
from tests.factories import UserFactory


class PingApi(APIView):
    required_scope = "jobs:read"

    def get(self, request: Request) -> Response:
        return Response({"data": {"pong": True}})


urlpatterns = [path("api/v1/ping", PingApi.as_view()), path("", include("flixly_site.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def get_ping(client, key: str | None = None, **headers):
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return client.get("/api/v1/ping", headers=headers)


def assert_unauthorized(response, words: str) -> None:
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert words in error["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'  # RFC 9110: a 401 names its scheme


def test_a_live_key_is_accepted(client, raw_key):
    assert get_ping(client, raw_key).json() == {"data": {"pong": True}}


def test_a_missing_key_is_unauthorized(client):
    assert_unauthorized(get_ping(client), "Authentication required")


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer flx_live_short", "Bearer sk-" + "a" * 40, "Bearer flx_live_" + "G" * 40],
)
def test_a_malformed_header_is_unauthorized(client, header):
    response = client.get("/api/v1/ping", headers={"Authorization": header})
    assert_unauthorized(response, "Malformed")
    token = header.partition(" ")[2]
    assert not token or token not in response.json()["error"]["message"]


def test_an_unknown_key_is_unauthorized_without_echoing_it(client):
    key = "flx_live_" + "ab" * 20
    response = get_ping(client, key)
    assert_unauthorized(response, "Unknown API key")
    assert key not in response.content.decode()


def test_a_revoked_key_is_unauthorized_at_once_even_with_a_warm_cache(
    client, user, raw_key, django_capture_on_commit_callbacks
):
    assert get_ping(client, raw_key).status_code == HTTPStatus.OK
    with django_capture_on_commit_callbacks(execute=True):
        apikey_revoke(user=user, key_id=ApiKey.objects.get().id)
    assert_unauthorized(get_ping(client, raw_key), "revoked")


def test_an_expired_key_is_unauthorized(client, user, make_key):
    key = make_key(user, expires_in_days=1)
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        assert_unauthorized(get_ping(client, key), "expired")


def test_a_rolled_key_without_grace_dies_at_once_even_with_a_warm_cache(
    client, user, raw_key, django_capture_on_commit_callbacks
):
    assert get_ping(client, raw_key).status_code == HTTPStatus.OK
    with django_capture_on_commit_callbacks(execute=True):
        issued = apikey_roll(user=user, key_id=ApiKey.objects.get().id, grace_hours=0)
    assert_unauthorized(get_ping(client, raw_key), "rolled")
    assert get_ping(client, issued.raw).status_code == HTTPStatus.OK


def test_a_rolled_key_works_until_its_grace_ends(client, user, raw_key):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        apikey_roll(user=user, key_id=ApiKey.objects.get().id, grace_hours=2)
        assert get_ping(client, raw_key).status_code == HTTPStatus.OK
    with time_machine.travel(start + timedelta(hours=2, seconds=1), tick=False):
        assert_unauthorized(get_ping(client, raw_key), "rolled")


def test_rolling_keeps_the_key_id_and_settings(user, raw_key):
    api_key = ApiKey.objects.get()
    issued = apikey_roll(user=user, key_id=api_key.id)
    assert issued.api_key.id == api_key.id
    assert issued.raw != raw_key
    assert issued.api_key.scopes == api_key.scopes


def test_a_key_for_a_disabled_account_is_unauthorized(client, user, raw_key):
    user.is_active = False
    user.save()
    assert_unauthorized(get_ping(client, raw_key), "disabled")


def test_a_key_without_the_scope_is_forbidden(client, user, make_key):
    key = make_key(user, scopes=["generate"])
    response = get_ping(client, key)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["error"]["code"] == "forbidden"
    assert "jobs:read" in response.json()["error"]["message"]


def test_a_key_from_a_disallowed_ip_is_forbidden(client, user, make_key):
    key = make_key(user, allowed_ips=["10.0.0.0/8"])
    response = get_ping(client, key)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "IP address" in response.json()["error"]["message"]


def test_a_key_from_an_allowed_ip_is_accepted(client, user, make_key):
    key = make_key(user, allowed_ips=["127.0.0.0/8"])
    assert get_ping(client, key).status_code == HTTPStatus.OK


@pytest.fixture
def behind_proxy(settings):
    settings.FLIXLY_BEHIND_PROXY = True
    settings.FLIXLY_PROXY_HOPS = 1
    return settings


def test_behind_a_proxy_a_spoofed_forwarded_address_does_not_pass_the_allowlist(client, user, make_key, behind_proxy):
    key = make_key(user, allowed_ips=["10.1.2.3/32"])
    # The client sent "10.1.2.3"; the proxy appended the address it really came from.
    response = get_ping(client, key, **{"X-Forwarded-For": "10.1.2.3, 203.0.113.9"})
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_behind_a_proxy_the_address_the_proxy_appended_is_the_clients(client, user, make_key, behind_proxy):
    key = make_key(user, allowed_ips=["10.1.2.3/32"])
    assert get_ping(client, key, **{"X-Forwarded-For": "198.51.100.1, 10.1.2.3"}).status_code == HTTPStatus.OK
    assert ApiKey.objects.get().last_used_ip == "10.1.2.3"


def test_behind_two_proxies_the_client_is_the_second_address_from_the_right(client, user, make_key, behind_proxy):
    behind_proxy.FLIXLY_PROXY_HOPS = 2
    key = make_key(user, allowed_ips=["10.1.2.3/32"])
    # client -> CDN (appends the client's address) -> load balancer (appends the CDN's) -> gunicorn
    spoofed = "10.1.2.3, 203.0.113.9, 198.51.100.7"
    assert get_ping(client, key, **{"X-Forwarded-For": spoofed}).status_code == HTTPStatus.FORBIDDEN
    assert get_ping(client, key, **{"X-Forwarded-For": "10.1.2.3"}).status_code == HTTPStatus.FORBIDDEN  # too few
    assert get_ping(client, key, **{"X-Forwarded-For": "1.1.1.1, 10.1.2.3, 198.51.100.7"}).status_code == HTTPStatus.OK


@pytest.mark.parametrize("forwarded", ["not-an-ip", "", " , ", "10.1.2.3:443"])
def test_a_forwarded_address_that_is_not_an_address_counts_as_the_peer(client, user, make_key, behind_proxy, forwarded):
    key = make_key(user, allowed_ips=["127.0.0.0/8"])
    assert get_ping(client, key, **{"X-Forwarded-For": forwarded}).status_code == HTTPStatus.OK
    assert ApiKey.objects.get().last_used_ip == "127.0.0.1"


def test_without_a_proxy_a_forwarded_header_is_ignored(client, user, make_key):
    key = make_key(user, allowed_ips=["10.1.2.3/32"])
    assert get_ping(client, key, **{"X-Forwarded-For": "10.1.2.3"}).status_code == HTTPStatus.FORBIDDEN


def test_an_ipv4_client_seen_through_an_ipv6_socket_matches_its_ipv4_range(client, user, make_key):
    key = make_key(user, allowed_ips=["10.0.0.0/8"])
    response = client.get("/api/v1/ping", HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR="::ffff:10.1.2.3")
    assert response.status_code == HTTPStatus.OK, response.json()


def test_a_warm_authenticated_request_runs_at_most_one_query(client, raw_key, django_assert_max_num_queries):
    get_ping(client, raw_key)  # warms the identity cache and writes last_used_at
    with django_assert_max_num_queries(1):
        assert get_ping(client, raw_key).status_code == HTTPStatus.OK


def test_last_used_is_written_at_most_once_a_minute(client, raw_key):
    get_ping(client, raw_key, **{"X-Forwarded-For": "1.2.3.4"})
    first = ApiKey.objects.get().last_used_at
    get_ping(client, raw_key)
    assert ApiKey.objects.get().last_used_at == first
    assert ApiKey.objects.get().last_used_ip == "127.0.0.1"


def test_the_logged_in_session_reaches_the_same_endpoints(client, user):
    client.force_login(user)
    assert get_ping(client).status_code == HTTPStatus.OK


def test_a_session_post_without_csrf_is_refused(user):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    csrf_client.get("/api/v1/keys")  # one counted request in this window
    response = csrf_client.post("/api/v1/keys", {"name": "x"}, content_type="application/json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["error"]["code"] == "forbidden"
    # An authenticated response all the same: the headers, with the refused request not counted.
    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == ("10", "9")
    assert response["X-Credit-Balance"] == "0" and "X-Token-Expires" not in response


def test_headers_on_an_authenticated_response(client, raw_key):
    response = get_ping(client, raw_key)
    assert response["X-RateLimit-Limit"] == "10"
    assert response["X-RateLimit-Remaining"] == "9"
    assert 1 <= int(response["X-RateLimit-Reset"]) <= 60
    assert response["X-Token-Expires"] == "90"
    assert response["X-Request-Id"]


@pytest.mark.parametrize(
    ("left", "header"), [(timedelta(days=1), "1"), (timedelta(hours=36), "2"), (timedelta(hours=1), "1")]
)
def test_the_token_expiry_header_counts_a_started_day(client, user, make_key, left, header):
    key = make_key(user, expires_in_days=1)
    ApiKey.objects.update(expires_at=timezone.now() + left)
    apikey_drop_cached()
    assert get_ping(client, key)["X-Token-Expires"] == header


def test_a_session_response_has_no_token_expiry_header(client, user):
    client.force_login(user)
    response = get_ping(client)
    assert "X-Token-Expires" not in response
    assert response["X-RateLimit-Limit"] == "10"


def test_a_path_cannot_forge_a_log_line(client, caplog):
    caplog.set_level(logging.INFO, logger="flixly.api")
    client.get("/api/v1/nope%0aFORGED%20line%00")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "flixly.api"]
    assert "\n" not in line and "\x00" not in line
    assert "path=/api/v1/nope%0AFORGED%20line%00 " in line


def test_a_key_pasted_into_a_path_is_logged_by_its_last_four_only(client, caplog):
    caplog.set_level(logging.INFO)
    key = f"flx_test_{'0f' * 18}c0de"
    client.get(f"/api/v1/keys/{key}/roll", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert key not in caplog.text and key[9:] not in caplog.text
    assert "path=/api/v1/keys/flx_test_…c0de/roll " in caplog.text


def test_the_access_log_keeps_secrets_out_and_cannot_be_forged():
    import runpy
    from datetime import timedelta as elapsed
    from types import SimpleNamespace

    from gunicorn.config import Config

    conf = runpy.run_path("gunicorn.conf.py")
    config = Config()
    config.set("logger_class", conf["logger_class"])
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/api/v1/x%0aFORGED?api_key=flx_live_secret",
        "PATH_INFO": "/api/v1/x\nFORGED",
        "QUERY_STRING": "api_key=flx_live_secret",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": "Basic Zmx4X2xpdmVfc2VjcmV0Og==",  # flx_live_secret:
    }
    atoms = conf["logger_class"](config).atoms(
        SimpleNamespace(status="401", sent=10, headers=[]), [], environ, elapsed(0)
    )
    line = conf["access_log_format"] % atoms
    assert "\n" not in line and "/api/v1/x%0AFORGED" in line
    assert "flx_live_secret" not in line


def test_raw_keys_never_reach_the_logs(client, user, make_key, caplog):
    caplog.set_level(logging.DEBUG)
    key = make_key(user, scopes=list(Scope.values))
    get_ping(client, key)
    api_key = ApiKey.objects.get()
    apikey_roll(user=user, key_id=api_key.id)
    assert key not in caplog.text
    assert key[:13] in caplog.text and key[-4:] in caplog.text


def test_raw_keys_are_not_stored_anywhere_in_the_database(user, make_key, capsys):
    key = make_key(user)
    call_command("dumpdata", "accounts")
    dump = capsys.readouterr().out
    assert key not in dump
    assert key[9:] not in dump


def test_another_accounts_key_id_is_not_found(client, raw_key):
    other = UserFactory()
    client.force_login(other)
    key_id = ApiKey.objects.get().id
    roll = client.post(f"/api/v1/keys/{key_id}/roll", content_type="application/json")
    for response in (roll, client.delete(f"/api/v1/keys/{key_id}")):
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert response.json()["error"]["code"] == "not_found"
    assert ApiKey.objects.get().revoked_at is None


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/accounts/password/reset/key/2-dijsoe-4bd3f0c1/", "/accounts/password/reset/key/[hidden]"),
        ("/accounts/confirm-email/MQ:1vN2x:abc/", "/accounts/confirm-email/[hidden]"),
        ("/outputs/Im91dHB1dHMvMS8x.sig/0.png", "/outputs/[hidden]"),
        ("/api/v1/jobs", "/api/v1/jobs"),
        (f"/api/v1/keys/flx_live_{'ab12' * 10}", "/api/v1/keys/flx_live_…ab12"),  # a key pasted as an id
    ],
)
def test_the_access_log_leaves_out_paths_that_are_credentials(path, logged):
    # A reset or confirmation key, or a signed output link, works for whoever reads the log.
    import runpy
    from datetime import timedelta as elapsed
    from types import SimpleNamespace

    from gunicorn.config import Config

    conf = runpy.run_path("gunicorn.conf.py")
    config = Config()
    config.set("logger_class", conf["logger_class"])
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    atoms = conf["logger_class"](config).atoms(
        SimpleNamespace(status="200", sent=10, headers=[]), [], environ, elapsed(0)
    )
    assert f'"GET {logged} HTTP/1.1"' in conf["access_log_format"] % atoms
