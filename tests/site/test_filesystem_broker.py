"""The development broker (filesystem://) hands a worker only whole messages."""

import threading
import time

from kombu import Connection
from kombu.transport import filesystem as kombu_filesystem

from flixly_site import broker
from flixly_site.broker import FilesystemTransport


def channel_on(folder, transport):
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "processed_folder": str(folder / "done")}
    (folder / "done").mkdir()
    connection = Connection("filesystem://", transport=transport, transport_options=options)
    return connection, connection.default_channel


def race(folder, transport, messages: int = 300) -> list:
    """A reader polling the queue while messages are put: what it got, or the error it met."""
    connection, writer = channel_on(folder, transport)
    reader = connection.clone().default_channel
    received, stop = [], threading.Event()

    def read() -> None:
        deadline = time.monotonic() + 30  # a lost message fails the test instead of hanging it
        while (not stop.is_set() or len(received) < messages) and time.monotonic() < deadline:
            try:
                received.append(reader._get("jobs"))
            except kombu_filesystem.Empty:
                continue
            except Exception as error:  # a message read before it was written
                received.append(error)
                return

    thread = threading.Thread(target=read)
    thread.start()
    for index in range(messages):
        writer._put("jobs", {"body": "x" * 20_000, "index": index})
    stop.set()
    thread.join(timeout=30)
    return received


def test_a_worker_never_reads_a_message_before_it_is_whole(tmp_path):
    received = race(tmp_path, FilesystemTransport)
    assert [error for error in received if isinstance(error, Exception)] == []  # kombu's own: a JSONDecodeError
    assert sorted(message["index"] for message in received) == list(range(300))  # every message, once


def test_kombu_takes_our_transports_for_every_filesystem_and_redis_url():
    assert Connection("filesystem://").get_transport_cls() is FilesystemTransport
    assert Connection("redis://127.0.0.1:9/0").get_transport_cls() is broker.Transport
    assert Connection("rediss://127.0.0.1:9/0").get_transport_cls() is broker.Transport
