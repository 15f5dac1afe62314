"""A chat reply as it is written: the worker appends each piece to a Redis stream, and a streamed
/openai/v1/chat/completions forwards the pieces as they come.

Only for jobs submitted as streamed completions (Job.live_reply), and only with Redis (REDIS_URL): web
and worker processes share nothing else that fast. Without it nothing is written, and a streamed
completion is replayed from the finished job. The job row stays the truth: a reader whose pieces stopped
(the stream's writes failed) takes what is left from the finished job's text; one that saw the job start
over with another reply (a worker lost mid-reply) ends with an error event.

Entries: {"attempt": token} before an attempt's first piece, {"text": pieces} as they come, {"end": "1"} when
that attempt stops (after a completed job's row is committed; a failed attempt may be retried). An attempt
with no text writes nothing: a reader then learns from the job row that it has finished.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from flixly_site.shared import redis_client

logger = logging.getLogger("flixly.jobs")

STREAM_TTL_SECONDS = 600  # a reader starts within seconds of the job; the rest is for slow replies
MAX_ENTRIES = 20_000  # a runaway upstream cannot grow one stream without bound
FLUSH_SECONDS = 0.05  # text held back at most this long after the upstream's next chunk (or the end)


def stream_key(job_id: object) -> str:
    return f"reply:{job_id}"


def streams_live() -> bool:
    return redis_client() is not None


class ReplyWriter:
    """The worker's side. A failed write only stops the live copy: the job still completes from its text."""

    def __init__(self, job_id: object) -> None:
        self.key = stream_key(job_id)
        self.client = redis_client()
        self.broken = self.client is None
        self.pending: list[str] = []
        self.flushed_at = 0.0
        self.started = False  # nothing is written for a job with no text (a no-op or failed attempt)

    def write(self, text: str) -> None:
        # Pieces that come faster than FLUSH_SECONDS go out together: one round trip, not one a token.
        self.pending.append(text)
        if time.monotonic() - self.flushed_at >= FLUSH_SECONDS:
            self._flush()

    def close(self) -> None:
        self._flush()
        if self.started:
            self._add([{"end": "1"}])

    def _flush(self) -> None:
        text, self.pending = "".join(self.pending), []
        self.flushed_at = time.monotonic()
        if not text:
            return
        entries = [{"text": text}]
        if not self.started:
            self.started = True
            entries.insert(0, {"attempt": uuid.uuid4().hex})  # tells this attempt's pieces from a retry's
        self._add(entries)

    def _add(self, entries: list[dict]) -> None:
        if self.broken:
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for fields in entries:
                    pipe.xadd(self.key, fields, maxlen=MAX_ENTRIES, approximate=True)
                pipe.expire(self.key, STREAM_TTL_SECONDS)
                pipe.execute()
        except redis.RedisError as error:
            self.broken = True
            logger.warning("reply stream %s not written: %s", self.key, type(error).__name__)


@dataclass
class ReplyReader:
    """The web side: reads pieces after `last_id`, keeping only the first attempt it sees."""

    job_id: object
    last_id: str = "0-0"
    attempt: str | None = None  # the attempt whose pieces are forwarded: the first one seen
    current: str | None = None  # the attempt now writing
    ended: bool = False

    def read(self, block_ms: int) -> Iterator[str]:
        """The pieces written since the last read, waiting up to `block_ms` for the first of them."""
        try:
            answer = redis_client().xread({stream_key(self.job_id): self.last_id}, block=block_ms, count=500)
        except redis.RedisError as error:
            logger.warning("reply stream of job %s not read: %s", self.job_id, type(error).__name__)
            self.ended = True  # the finished job's text covers the rest
            return
        for _, entries in answer:
            for entry_id, fields in entries:
                self.last_id = entry_id.decode()
                yield from self._piece(fields)

    def _piece(self, fields: dict[bytes, bytes]) -> Iterator[str]:
        if b"end" in fields:
            self.ended = True
        elif b"attempt" in fields:
            self.current = fields[b"attempt"].decode()
            self.attempt = self.attempt or self.current
        elif b"text" in fields and self.current == self.attempt:
            yield fields[b"text"].decode()
