"""kombu's Redis and filesystem transports, each with one fix; they are kombu's transports for their URL
schemes (flixly_site/celery.py).

Redis: one Redis client per channel instead of a new one per message. kombu's Redis channel builds a
redis-py client (a fresh connection-pool wrapper) for every message it publishes; with redis-py 8 that was
about a twentieth of a job submit's CPU. (Submits on plain redis:// now push their message themselves,
generation/queue.py; every other message comes through here.) The client is only a handle on the
channel's own connection pool and is safe to share, so the channel keeps one.

Filesystem (the development broker): kombu creates a message's file and then writes it, and a worker
polling the folder can take the file in between, read nothing and stop on the JSON error (kombu issue
#1551); `make run` then stops with it. Here a message is written under a name no worker looks for and
renamed into place, which is atomic. A message given back after its worker died says it was redelivered.
"""

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from kombu.exceptions import ChannelError
from kombu.transport import filesystem as kombu_filesystem
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps


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


class FilesystemChannel(kombu_filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs) -> None:
        # kombu's own name (<ms>_<uuid>.<queue>.msg: it reads them in that order) once whole
        final = os.path.join(self.data_folder_out, f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg")
        partial = f"{final}.part"  # a worker takes only names ending in .<queue>.msg
        try:
            with open(partial, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as error:
            raise ChannelError(f"Cannot add a message to {self.data_folder_out!r}") from error

    def _restore(self, message) -> None:
        # A message given back (Celery's reject_on_worker_lost after a pool process died) is marked where
        # Celery reads it, in its delivery_info, as the Redis transport marks it; kombu marks the payload's top
        # level, which no consumer reads, and run_job then left the dead attempt's job running to its deadline.
        message.delivery_info["redelivered"] = True
        super()._restore(message)


class FilesystemTransport(kombu_filesystem.Transport):
    Channel = FilesystemChannel
    # Folders have no host: with kombu's default ("localhost") every connection warned that none was supplied.
    default_connection_params: dict = {}
