"""The per-process identity cache, its versions in the shared store, and the balance mirrored for the header."""

from http import HTTPStatus

import pytest
from django.db import transaction
from django.urls import include, path
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.selectors import apikey_load, shallow_copy
from accounts.services import apikey_cache_forget, apikey_create, apikey_hash, apikey_version_key
from billing.balance_cache import balance_key, balance_parse, balance_store
from billing.services import debit_prepare, wallet_adjust
from flixly_site.shared import LuaScript, redis_client, redis_command, thread_connection


class PingApi(APIView):
    def get(self, request: Request) -> Response:
        return Response({"data": {"pong": True}})  # no queries of its own


urlpatterns = [path("api/v1/ping", PingApi.as_view()), path("", include("flixly_site.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def get_ping(client, key: str):
    return client.get("/api/v1/ping", headers={"Authorization": f"Bearer {key}"})


def test_a_key_revoked_in_another_process_is_refused_on_its_next_request(
    client, raw_key, django_capture_on_commit_callbacks
):
    assert get_ping(client, raw_key).status_code == HTTPStatus.OK  # now cached in this process
    # Another process revokes: the row changes and the version is bumped, nothing here is told.
    ApiKey.objects.update(revoked_at=timezone.now())
    assert get_ping(client, raw_key).status_code == HTTPStatus.OK  # this process has not seen it yet
    with django_capture_on_commit_callbacks(execute=True):
        apikey_cache_forget([apikey_hash(raw_key)])
    response = get_ping(client, raw_key)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert "revoked" in response.json()["error"]["message"]


def test_a_version_bump_waits_for_the_commit(raw_key, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        apikey_cache_forget([apikey_hash(raw_key)])
    assert len(callbacks) == 1  # a bump before the commit could let another process cache the old row


def test_a_revoked_key_does_not_use_up_the_account_limit(api, user, django_capture_on_commit_callbacks):
    assert api.get("/api/v1/keys").status_code == HTTPStatus.OK
    with django_capture_on_commit_callbacks(execute=True):
        from accounts.services import apikey_revoke

        apikey_revoke(user=user, key_id=ApiKey.objects.get().id)
    for _ in range(15):
        assert api.get("/api/v1/keys").status_code == HTTPStatus.UNAUTHORIZED
    session = api
    session.defaults.pop("HTTP_AUTHORIZATION")
    session.force_login(user)
    # Counted: the first request, the one that found the key revoked, and this one.
    assert session.get("/api/v1/keys")["X-RateLimit-Remaining"] == "7"


@pytest.mark.redis
def test_a_warm_keyed_request_runs_no_sql_with_redis(
    client, raw_key, django_assert_num_queries, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        get_ping(client, raw_key)  # caches the identity and mirrors the balance
    with django_assert_num_queries(0):
        response = get_ping(client, raw_key)
    assert response.status_code == HTTPStatus.OK
    assert response["X-Credit-Balance"] == "0"


@pytest.mark.redis
def test_the_balance_header_follows_a_debit_made_elsewhere(
    client, user, raw_key, django_assert_num_queries, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        wallet_adjust(user_id=user.pk, amount=100, reason="test")
    get_ping(client, raw_key)
    with django_capture_on_commit_callbacks(execute=True):  # a worker's debit commits
        debit_prepare(user_id=user.pk, amount=30, idempotency_key="debit:elsewhere").run()
    with django_assert_num_queries(0):
        assert get_ping(client, raw_key)["X-Credit-Balance"] == "70"


@pytest.mark.redis
def test_the_mirror_keeps_the_newest_balance_whatever_the_write_order():
    balance_store(7, balance=50, version=3)
    balance_store(7, balance=80, version=2)  # an older write that arrives late
    assert balance_parse(redis_client().get(balance_key(7))) == 50


@pytest.mark.redis
def test_a_rolled_back_debit_leaves_the_mirror_alone(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        wallet_adjust(user_id=user.pk, amount=100, reason="test")

    @transaction.atomic
    def submit_that_fails() -> None:
        debit_prepare(user_id=user.pk, amount=30, idempotency_key="debit:rolled-back").run()
        raise RuntimeError("the job insert failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        submit_that_fails()
    assert balance_parse(redis_client().get(balance_key(user.pk))) == 100


@pytest.mark.redis
def test_scripts_survive_a_redis_that_forgot_them_or_dropped_the_connection():
    script = LuaScript("return redis.call('INCR', KEYS[1])")
    client = redis_client()
    client.delete("test:script")
    assert script(keys=["test:script"]) == 1
    client.script_flush()
    assert script(keys=["test:script"]) == 2  # NOSCRIPT: sent whole
    client.client_kill_filter(_type="normal", skipme=True)
    assert script(keys=["test:script"]) == 3  # the dropped connection is replaced


@pytest.mark.redis
def test_a_command_interrupted_before_its_reply_does_not_hand_that_reply_to_the_next(settings, monkeypatch):
    class Interrupted(BaseException):  # as a worker's time limit or shutdown would interrupt it
        pass

    client = redis_client()
    client.set("test:a", "first")
    client.set("test:b", "second")
    conn = thread_connection(settings.REDIS_URL)
    monkeypatch.setattr(conn, "read_response", lambda *a, **k: (_ for _ in ()).throw(Interrupted()))
    with pytest.raises(Interrupted):
        redis_command(settings.REDIS_URL, "GET", "test:a")
    monkeypatch.undo()
    assert redis_command(settings.REDIS_URL, "GET", "test:b") == b"second"


@pytest.mark.redis
def test_a_redis_outage_is_a_503_and_not_a_crash(client, raw_key, settings):
    get_ping(client, raw_key)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = get_ping(client, raw_key)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["error"]["code"] == "service_unavailable"


def test_reactivating_an_account_applies_at_once(client, user, raw_key, django_capture_on_commit_callbacks):
    from accounts.services import apikey_forget_user

    assert get_ping(client, raw_key).status_code == HTTPStatus.OK
    for active, status in ((False, HTTPStatus.UNAUTHORIZED), (True, HTTPStatus.OK)):
        user.is_active = active
        user.save()
        with django_capture_on_commit_callbacks(execute=True):
            apikey_forget_user(user=user)
        assert get_ping(client, raw_key).status_code == status


def test_a_version_lost_from_the_store_still_shows_the_next_change(client, raw_key, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    key_hash = apikey_hash(raw_key)
    with django_capture_on_commit_callbacks(execute=True):
        apikey_cache_forget([key_hash])
    assert get_ping(client, raw_key).status_code == HTTPStatus.OK  # cached with that version
    # Expired, evicted, or a restarted store:
    store = redis_client() or cache
    store.delete(apikey_version_key(key_hash))
    ApiKey.objects.update(revoked_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        apikey_cache_forget([key_hash])  # a counter would be back at its old value; a token never is
    assert get_ping(client, raw_key).status_code == HTTPStatus.UNAUTHORIZED


def test_the_balance_header_of_a_request_that_may_move_money_comes_from_the_database(rf, user):
    from billing.hooks import credit_balance_header

    wallet_adjust(user_id=user.pk, amount=40, reason="test")
    for method, expected in (("get", "999"), ("post", "40")):  # a cancel's refund happens after auth
        request = getattr(rf, method)("/api/v1/jobs/x/cancel")
        request.flixly_user, request.flixly_reads = user, {"balance": b"1:999"}
        response = Response()
        credit_balance_header(request, response)
        assert response["X-Credit-Balance"] == expected


@pytest.mark.redis
def test_a_cold_key_during_a_redis_outage_is_a_503(client, raw_key, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = get_ping(client, raw_key)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["error"]["code"] == "service_unavailable"


@pytest.mark.redis
def test_a_revoke_during_a_redis_outage_still_succeeds_and_says_so_in_the_log(
    user, raw_key, settings, caplog, django_capture_on_commit_callbacks
):
    from accounts.services import apikey_revoke

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with django_capture_on_commit_callbacks(execute=True):
        revoked = apikey_revoke(user=user, key_id=ApiKey.objects.get().id)
    assert revoked.revoked_at is not None
    assert "could not publish API key changes" in caplog.text


def test_each_request_gets_its_own_copy_of_the_cached_account(user):

    entry = apikey_load(apikey_hash(apikey_create(user=user, name="copy").raw), version=None)
    first, second = entry.owner(), entry.owner()
    assert first is not entry.user and first is not second
    assert (first.pk, first.email, first.plan) == (entry.user.pk, entry.user.email, entry.user.plan)
    first.email, first._state.fields_cache["wallet"] = "changed@example.com", object()
    assert entry.user.email == user.email and "wallet" not in entry.user._state.fields_cache
    assert "wallet" not in second._state.fields_cache
    assert shallow_copy(first)._state.db == first._state.db and not shallow_copy(first)._state.adding


def test_a_redis_that_never_answers_times_out_once_without_a_retry(monkeypatch):
    """The sockets block and keep their timeout in the kernel; a silent server is still a timeout, after
    IO_TIMEOUT_SECONDS, and not retried as a lost connection would be."""
    import socket
    import time

    import redis

    from flixly_site import shared

    monkeypatch.setattr(shared, "IO_TIMEOUT_SECONDS", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections (backlog), never replies
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            redis_command(url, "PING")
        took = time.monotonic() - started
        assert thread_connection(url)._sock is None  # dropped: a late reply must not reach the next command
    assert 0.25 < took < 1.5  # one timeout, not two
