"""Celery's Redis transport, with one Redis client per channel instead of a new one per message.

kombu's Redis channel builds a redis-py client (a fresh connection-pool wrapper) for every message
it publishes; with redis-py 8 that was about a twentieth of a job submit's CPU. (Submits on plain
redis:// now push their message themselves, generation/queue.py; every other message comes through
here.) The client is only a handle on the channel's own connection pool and is safe to share, so the
channel keeps one.
Selected by CELERY_BROKER_TRANSPORT when the broker is Redis.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _publish_client: redis.Redis | None = None

    @contextmanager
    def conn_or_acquire(self, client: redis.Redis | None = None) -> Iterator[redis.Redis]:
        if client is not None:
            yield client
            return
        if self._publish_client is None:
            self._publish_client = self._create_client()
        yield self._publish_client

    def _disconnect_pools(self) -> None:
        self._publish_client = None  # it wraps the pool kombu drops here (on close and after a fork)
        super()._disconnect_pools()


class Transport(kombu_redis.Transport):
    Channel = Channel
