"""generation.queue publishes the run_job message Celery itself would, and the worker side reads it back."""

import base64
import json
import time

import pytest
from kombu.transport.memory import Channel as MemoryChannel

from generation.queue import channel_message, publish_run_job, redis_entry, task_message
from generation.tasks import run_job

pytestmark = pytest.mark.django_db

JOB_ID = "5f0c3a52-3d8e-4d47-9a51-0d8d2b8d4a11"
TEST_QUEUE = "flixly-test-queue"  # not Celery's: no worker of another test reads it
PER_MESSAGE = ("id", "root_id")  # fresh for every message: compared for shape, not value


def _drain() -> list[dict]:
    queue = MemoryChannel.queues.get("celery")  # Celery's default queue, which the workers consume
    messages = []
    while queue is not None and not queue.empty():
        messages.append(queue.get_nowait())
    return messages


def _comparable(message: dict) -> dict:
    message = json.loads(json.dumps(message))
    headers, properties = message["headers"], message["properties"]
    assert headers["id"] == headers["root_id"] == properties["correlation_id"]
    for name in PER_MESSAGE:
        headers[name] = "<task id>"
    properties["correlation_id"] = properties["delivery_tag"] = "<per message>"
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def test_the_message_is_the_one_apply_async_publishes(no_worker):
    _drain()
    run_job.apply_async(args=[JOB_ID], soft_time_limit=180, time_limit=210)
    publish_run_job(JOB_ID, soft=180, hard=210)

    celerys, ours = _drain()

    assert _comparable(ours) == _comparable(celerys)
    assert ours["headers"]["timelimit"] == [210, 180]
    assert json.loads(base64.b64decode(ours["body"]))[0] == [JOB_ID]


def test_every_message_has_its_own_task_id(no_worker):
    _drain()
    publish_run_job(JOB_ID, soft=10, hard=40)
    publish_run_job(JOB_ID, soft=10, hard=40)

    first, second = _drain()

    assert first["headers"]["id"] != second["headers"]["id"]
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]


def test_eager_mode_runs_the_task_inline(monkeypatch):
    ran = []
    monkeypatch.setattr(run_job, "run", lambda job_id: ran.append(job_id))

    publish_run_job(JOB_ID, soft=10, hard=40)

    assert ran == [JOB_ID]


def test_a_broker_that_is_down_fails_the_publish_at_once(settings):
    from kombu.exceptions import OperationalError

    from tests.generation.worker_helpers import celery_conf

    with celery_conf(broker_url="redis://127.0.0.1:9/0", task_always_eager=False):
        started = time.monotonic()
        with pytest.raises(OperationalError):
            publish_run_job(JOB_ID, soft=10, hard=40)
        with pytest.raises(OperationalError):  # and again: no connection attempt was left half-made
            publish_run_job(JOB_ID, soft=10, hard=40)
    # One quick retry each (the policy's 0.5 s at most), not kombu's default reconnect schedule.
    assert time.monotonic() - started < 3


@pytest.mark.redis
def test_on_redis_the_list_entry_is_what_kombus_own_redis_channel_writes(settings):
    import kombu
    import redis

    def parts() -> tuple[bytes, dict, dict]:  # one set each: kombu's channel changes the properties it is given
        return task_message(run_job.name, [JOB_ID], soft=180, hard=210, ignore_result=run_job.ignore_result)

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(TEST_QUEUE)
    with kombu.Connection(settings.REDIS_URL) as connection:
        channel = connection.default_channel
        channel.basic_publish(channel_message(channel, *parts()), exchange="", routing_key=TEST_QUEUE)
    client.lpush(TEST_QUEUE, redis_entry(TEST_QUEUE, *parts()))
    ours, kombus = (json.loads(raw) for raw in client.lrange(TEST_QUEUE, 0, -1))  # LPUSH: newest first
    client.delete(TEST_QUEUE)

    assert _comparable(ours) == _comparable(kombus)
    assert ours["properties"]["delivery_info"] == {"exchange": "", "routing_key": TEST_QUEUE}


@pytest.mark.redis
def test_on_redis_the_published_entry_is_redis_entry_of_the_task_message(settings):
    import redis

    from tests.generation.worker_helpers import celery_conf

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("celery")
    with celery_conf(broker_url=settings.REDIS_URL, task_always_eager=False):
        publish_run_job(JOB_ID, soft=180, hard=210)
        publish_run_job(JOB_ID, soft=180, hard=210)
    first, second = (json.loads(raw) for raw in client.lrange("celery", 0, -1))
    client.delete("celery")
    parts = task_message(run_job.name, [JOB_ID], soft=180, hard=210, ignore_result=run_job.ignore_result)
    reference = json.loads(redis_entry("celery", *parts))

    assert _comparable(first) == _comparable(second) == _comparable(reference)
    assert first["headers"]["id"] != second["headers"]["id"]
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]
