"""On Redis, a submit's new balance goes out with its job's message, in one round trip before the commit;
a commit that fails takes it back."""

from http import HTTPStatus

import psycopg
import pytest
from django.db import OperationalError, transaction

from billing import balance_cache
from billing.balance_cache import balance_key, balance_parse
from billing.models import Wallet
from flixly_site.shared import redis_client
from generation.models import Job
from tests.generation.conftest import generate
from tests.generation.worker_helpers import celery_conf

# The submit's atomic() must be top level, as in production: only then does the balance go out ahead.
pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_broker(settings):
    """The broker is the shared store, as in the default production setup; nobody consumes its queue."""
    with celery_conf(broker_url=settings.REDIS_URL, task_always_eager=False):
        yield
    redis_client().delete("celery")


@pytest.fixture
def no_store_after_commit(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the balance was stored in a round trip of its own")

    monkeypatch.setattr(balance_cache, "balance_store", refuse)


def test_the_new_balance_goes_out_with_the_jobs_message(api, funded, redis_broker, no_store_after_commit):
    redis_client().delete(balance_key(funded.pk))

    response = generate(api)

    assert response.status_code == HTTPStatus.ACCEPTED
    wallet = Wallet.objects.get(user_id=funded.pk)
    assert redis_client().get(balance_key(funded.pk)) == f"{wallet.version}:{wallet.balance}".encode()
    assert response["X-Credit-Balance"] == str(wallet.balance)
    assert redis_client().llen("celery") == 1


def test_a_commit_that_fails_takes_the_balance_back(api, funded, redis_broker, monkeypatch):
    before = Wallet.objects.get(user_id=funded.pk).balance
    connection = transaction.get_connection()

    seen_at_commit = []

    def lost_at_commit() -> None:
        seen_at_commit.append(balance_parse(redis_client().get(balance_key(funded.pk))))
        error = OperationalError("server closed the connection unexpectedly")
        error.__cause__ = psycopg.OperationalError(str(error))
        raise error

    monkeypatch.setattr(connection, "commit", lost_at_commit)
    response = generate(api)
    monkeypatch.undo()

    # The job was queued and the commit's outcome is unknown: not a 503 ("nothing charged"), which a client
    # would resend without an Idempotency-Key and maybe pay twice.
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "Idempotency-Key" in response.json()["error"]["message"] and response["x-should-retry"] == "false"
    assert seen_at_commit == [before - 1]  # the balance had gone out ahead of the commit

    # Dropped (or stored again from the database by the error's own header): never the failed debit's.
    assert balance_parse(redis_client().get(balance_key(funded.pk))) in (None, before)
    assert Wallet.objects.get(user_id=funded.pk).balance == before
    assert not Job.objects.exists()


def test_an_entry_a_failed_attempt_left_behind_is_replaced_by_the_next_submit(api, funded, redis_broker):
    wallet = Wallet.objects.get(user_id=funded.pk)
    redis_client().set(balance_key(funded.pk), f"{wallet.version + 1}:5")  # never committed

    assert generate(api).status_code == HTTPStatus.ACCEPTED

    wallet.refresh_from_db()
    assert redis_client().get(balance_key(funded.pk)) == f"{wallet.version}:{wallet.balance}".encode()


def test_a_publish_that_fails_after_the_balance_went_out_takes_it_back(api, funded, redis_broker, monkeypatch):
    import redis

    from flixly_site import shared

    sent = shared._round_trip_many

    def reply_lost(url, commands):
        replies = sent(url, commands)
        if commands[0][0] == "LPUSH":  # Redis ran the LPUSH and the SET; their replies never arrive
            raise redis.TimeoutError("Timeout reading from socket")
        return replies

    monkeypatch.setattr(shared, "_round_trip_many", reply_lost)
    response = generate(api)
    monkeypatch.undo()

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert balance_parse(redis_client().get(balance_key(funded.pk))) in (None, 100)
    assert Wallet.objects.get(user_id=funded.pk).balance == 100
