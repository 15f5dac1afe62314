"""The development broker (filesystem://) hands a worker only whole messages."""

import threading
import time

from kombu import Connection
from kombu.transport import filesystem as kombu_filesystem
from kombu.transport.virtual import BrokerState

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


def test_a_message_requeued_after_a_lost_worker_says_it_was_redelivered(tmp_path, monkeypatch):
    # run_job takes an orphaned job over only when delivery_info says "redelivered"; kombu marked a requeued
    # filesystem message elsewhere, so a job whose pool process died stayed "running" until its deadline.
    folder = str(tmp_path)
    # A control folder of its own (kombu's default, ./control, is the repository's root), and bindings of its
    # own: kombu keeps them process-wide, and one an earlier test declared would never reach this folder.
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": str(tmp_path / "control")}
    monkeypatch.setattr(FilesystemTransport, "global_state", BrokerState())
    with Connection(transport=FilesystemTransport, transport_options=options) as connection:
        queue = connection.SimpleQueue("celery")
        queue.put({"job": 1})
        queue.get(timeout=2).reject(requeue=True)  # what Celery's reject_on_worker_lost does
        again = queue.get(timeout=2)
        assert again.delivery_info.get("redelivered") is True
        assert again.payload == {"job": 1}
        queue.close()


def test_a_filesystem_connection_needs_no_hostname_and_warns_of_none(tmp_path, caplog):
    connection, _ = channel_on(tmp_path, FilesystemTransport)  # kombu said "No hostname was supplied" 9 times a run
    connection.clone()
    assert "hostname" not in caplog.text
