"""A worker node's heartbeat: a thread of its main process records that the node is alive (generation.services.
worker_node_beat) every FLIXLY_WORKER_HEARTBEAT seconds; beat's reaper takes back the jobs of a node gone silent.

A thread, not a timer on the worker's event loop: a solo or threads pool runs a task in the loop's own thread
(or holds the loop up), so a long task would stop a timer's beats and its node would look lost while it works.
"""

import logging
import threading

from django.db import close_old_connections, connections

from generation.services import worker_node_beat

logger = logging.getLogger("flixly.jobs")


class Heartbeat:
    def __init__(self, *, name: str, interval: float):
        self.name, self.interval = name, interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"heartbeat {name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def run(self) -> None:
        while True:
            self.beat()
            if self.stopping.wait(self.interval):
                break
        connections.close_all()  # this thread's

    def beat(self) -> None:
        # This thread's own connection, kept and dropped by Django's rules (CONN_MAX_AGE, health checks) as a
        # request's is; a failed beat is logged, never the end of the thread (its node would look lost).
        close_old_connections()
        try:
            worker_node_beat(name=self.name)
        except Exception:
            logger.exception("heartbeat of %s failed", self.name)
        finally:
            close_old_connections()


_running: Heartbeat | None = None


def heartbeat_start(*, name: str, interval: float) -> None:
    global _running
    if _running is None:
        _running = Heartbeat(name=name, interval=interval)
        _running.start()


def heartbeat_stop() -> None:
    global _running
    if _running is not None:
        _running.stop()
        _running = None
