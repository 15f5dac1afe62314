"""Publishing run_job: Celery's task message (protocol 2), built here and handed to the broker.

Every submit publishes one run_job message. apply_async spent about 0.5 ms of CPU on each (option and
route lookups, message assembly, kombu's publish wrappers): a sixth of a submit. The message only differs
by the job's id and its time limits, so it is built here as Celery builds it (tests compare the two
field by field). On plain Redis, the production broker, it is pushed onto the queue's list as kombu's Redis
channel stores it (tests compare that too), with one LPUSH on the thread's own connection: kombu's
producer pool and publish wrappers cost as much again as the message. Other brokers (the embedded
filesystem one) get it through the channel of a pooled producer, as kombu's Producer gives it, with the
same queue declaration and reconnect-and-retry.
Eager mode (tests) still goes through apply_async, which runs the task inline. The message goes to
Celery's default queue: run_job has no route (only webhook deliveries are routed, to their own queue), and
there are no publish signal handlers.
"""

import base64
import json
import os
import socket
import uuid
from functools import cache

import redis
from django.conf import settings
from kombu import Queue
from kombu.exceptions import OperationalError
from kombu.transport.base import StdChannel

from flixly_site.celery import app
from flixly_site.shared import redis_commands

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
CONTENT_TYPE, CONTENT_ENCODING = "application/json", "utf-8"
RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}


@cache
def _origin(pid: int) -> str:
    return f"gen{pid}@{socket.gethostname()}"  # as Celery names the publishing process


def task_message(task: str, args: list, *, soft: int, hard: int, ignore_result: bool) -> tuple[bytes, dict, dict]:
    """The body, headers and properties apply_async would publish for `task(*args)` with these time limits."""
    task_id = str(uuid.uuid4())
    headers = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [hard, soft],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(args),
        "kwargsrepr": "{}",
        "origin": _origin(os.getpid()),
        "ignore_result": ignore_result,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties = {"correlation_id": task_id, "reply_to": app.thread_oid, "delivery_mode": 2}
    return json.dumps([args, {}, EMBED]).encode(), headers, properties


def channel_message(channel: StdChannel, body: bytes, headers: dict, properties: dict) -> object:
    """The message in the form a kombu channel publishes."""
    return channel.prepare_message(
        body, 0, content_type=CONTENT_TYPE, content_encoding=CONTENT_ENCODING, headers=headers, properties=properties
    )


def redis_entry(queue: str, body: bytes, headers: dict, properties: dict) -> str:
    """The message as kombu's Redis channel stores it in the queue's list (priority 0, base64 body)."""
    delivery = {"exchange": "", "routing_key": queue}
    properties = {**properties, "delivery_info": delivery, "priority": 0}
    properties.update(body_encoding="base64", delivery_tag=str(uuid.uuid4()))
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": CONTENT_ENCODING,
        "content-type": CONTENT_TYPE,
        "headers": headers,
        "properties": properties,
    }
    return json.dumps(message)


# Stand-ins for what differs from one run_job message to the next, in a message built once (_redis_template).
ID_SLOT, JOB_SLOT, BODY_SLOT, TAG_SLOT = "@@task-id@@", "@@job-id@@", "@@body@@", "@@delivery-tag@@"


@cache
def _redis_template(
    task: str, queue: str, soft: int, hard: int, ignore_result: bool, reply_to: str, pid: int
) -> tuple[str, str]:
    """redis_entry's text of a run_job message with its ids as slots, and its body's text: each message is
    then a few replacements in place of two JSON encodings and a dozen dictionaries. Per thread (its
    reply_to) and process (the origin task_message names)."""
    body, headers, properties = task_message(task, [JOB_SLOT], soft=soft, hard=hard, ignore_result=ignore_result)
    headers |= {"id": ID_SLOT, "root_id": ID_SLOT}
    properties |= {"correlation_id": ID_SLOT, "reply_to": reply_to}
    message = json.loads(redis_entry(queue, body, headers, properties))
    message["body"], message["properties"]["delivery_tag"] = BODY_SLOT, TAG_SLOT
    return json.dumps(message), body.decode()


def run_job_entry(task: str, queue: str, job_id: str, *, soft: int, hard: int, ignore_result: bool) -> str:
    """What redis_entry(queue, *task_message(task, [job_id], ...)) gives, for a job id (a UUID: nothing in
    it needs escaping, in JSON or in the argument's repr)."""
    entry, body = _redis_template(task, queue, soft, hard, ignore_result, app.thread_oid, os.getpid())
    encoded = base64.b64encode(body.replace(JOB_SLOT, job_id).encode()).decode()
    entry = entry.replace(ID_SLOT, str(uuid.uuid4())).replace(TAG_SLOT, str(uuid.uuid4()))
    return entry.replace(JOB_SLOT, job_id).replace(BODY_SLOT, encoded)


@cache
def _broker_write_url() -> str:
    """Where Celery itself publishes (the broker URL unless set apart): read once, as Celery's lookup of
    it cost more than the rest of a publish. Settings do not change in a running process; a test that
    points Celery elsewhere calls broker_forget()."""
    return app.conf.broker_write_url


broker_forget = _broker_write_url.cache_clear


def publish_run_job(job_id: str, *, soft: int, hard: int, also: tuple[tuple, ...] = ()) -> list | None:
    """Queue generation.tasks.run_job(job_id); a broker that is down raises kombu's OperationalError
    after one reconnect-and-retry. `also`: commands for the shared store (settings.REDIS_URL), sent in
    the message's round trip when the broker is that store; their replies, or None when not sent."""
    from generation.tasks import run_job

    if app.conf.task_always_eager:
        run_job.apply_async(args=[job_id], soft_time_limit=soft, time_limit=hard)
        return None
    queue = app.amqp.default_queue  # the queue the workers consume, published to by name as apply_async does
    url = _broker_write_url()
    # One plain Redis server only: redis-py reads TLS options (rediss://) otherwise than kombu does, and
    # a failover list (";") is kombu's to walk.
    if url.startswith("redis://") and ";" not in url:
        entry = run_job_entry(
            run_job.name, queue.name, job_id, soft=soft, hard=hard, ignore_result=run_job.ignore_result
        )
        return _push_to_redis(url, queue.name, entry, also if url == settings.REDIS_URL else ())
    _publish_on_channel(
        queue, task_message(run_job.name, [job_id], soft=soft, hard=hard, ignore_result=run_job.ignore_result)
    )
    return None


def _push_to_redis(url: str, queue: str, entry: str, also: tuple[tuple, ...]) -> list | None:
    # A retried push may land twice; the worker's conditional claim runs the job once all the same.
    try:
        pushed, *replies = redis_commands(url, ("LPUSH", queue, entry), *also)
    except redis.RedisError as error:
        raise OperationalError(f"broker unavailable: {type(error).__name__}") from error
    if isinstance(pushed, redis.RedisError):
        raise OperationalError(f"broker refused the message: {type(pushed).__name__}") from pushed
    return replies if also else None


def _publish_on_channel(queue: Queue, parts: tuple[bytes, dict, dict]) -> None:
    with app.producer_or_acquire() as producer:

        def put() -> None:  # reads the channel at call time: a retry runs on a revived one
            producer.maybe_declare(queue)  # once per connection, as apply_async does
            message = channel_message(producer.channel, *parts)
            producer.channel.basic_publish(message, exchange="", routing_key=queue.name)

        # As kombu's Producer.publish(retry=True) does: opening the channel then follows the same short
        # policy instead of kombu's default reconnect schedule (seconds per submit while the broker is down).
        producer.connection.transport_options.update(RETRY_POLICY)
        producer.connection.ensure(producer, put, **RETRY_POLICY)()
