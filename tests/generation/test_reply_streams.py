"""A streamed chat completion forwards the reply as the worker writes it (through a Redis stream), and the
finished job stays the truth: missed pieces are made up from its text, a failure ends the stream with an
error object."""

import json
import threading
import time
import uuid

import httpx
import pytest

from flixly_site.shared import redis_client
from generation.api.openai import NotRetried, _chunks, _words
from generation.models import Job
from generation.streams import ReplyReader, ReplyWriter, stream_key


def contents(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


class FakeJob:
    id = uuid.uuid4()
    model_id = "local-chat"
    params: dict = {}
    usage = {"promptTokens": 3, "completionTokens": 2}
    created_at = type("Moment", (), {"timestamp": staticmethod(lambda: 0)})()

    def __init__(self, text: str):
        self.text = text


# --- the chunks a streamed completion sends (no Redis needed) -------------------------------------------


def test_pieces_a_reader_missed_are_made_up_from_the_finished_job():
    job = FakeJob("Hello there")
    chunks = list(_chunks(job, iter(["Hel"]), lambda: job, include_usage=True))
    assert contents(chunks) == "Hello there"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["total_tokens"] == 5


def test_a_reply_that_went_another_way_than_the_job_ends_with_an_error_not_a_finish():
    # A worker lost mid-reply, and the job ran again with another reply: the reader's text is not the job's.
    job = FakeJob("Goodbye")
    chunks = list(_chunks(job, iter(["Hel"]), lambda: job, include_usage=False))
    assert contents(chunks) == "Hel"
    assert "interrupted" in chunks[-1]["error"]["message"] and str(job.id) in chunks[-1]["error"]["message"]


def test_an_unexpected_failure_after_the_first_piece_still_ends_with_an_error_object():
    def broken():
        raise RuntimeError("database went away")

    chunks = list(_chunks(FakeJob(""), iter(["Hel"]), broken, include_usage=False))
    assert chunks[-1]["error"]["type"] == "server_error"


def test_a_job_that_fails_mid_reply_ends_the_stream_with_an_error_object():
    def failed():
        raise NotRetried("The upstream failed. Your credits were refunded.")

    chunks = list(_chunks(FakeJob(""), iter(["Hel"]), failed, include_usage=True))
    assert chunks[-1]["error"]["message"].startswith("The upstream failed. Your credits were refunded.")


def test_a_finished_reply_is_replayed_a_word_at_a_time():
    assert list(_words("one two three")) == ["one ", "two ", "three"]


# --- the Redis stream between worker and web --------------------------------------------------------------


@pytest.mark.redis
def test_a_reader_gets_each_piece_as_it_is_written():
    job_id = uuid.uuid4()
    reader, got = ReplyReader(job_id), []

    def read_until_two() -> None:
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            got.extend((piece, time.monotonic()) for piece in reader.read(block_ms=2000))

    thread = threading.Thread(target=read_until_two)
    thread.start()
    writer = ReplyWriter(job_id)
    writer.write("Hel")
    time.sleep(0.3)
    written_second = time.monotonic()
    writer.write("lo")
    writer.close()
    thread.join(timeout=10)

    assert [piece for piece, _ in got] == ["Hel", "lo"]
    assert got[0][1] < written_second  # the first piece arrived before the second was written
    assert list(reader.read(block_ms=10)) == [] and reader.ended
    assert 0 < redis_client().ttl(stream_key(job_id)) <= 600


@pytest.mark.redis
def test_a_second_attempts_pieces_are_not_forwarded_after_the_firsts():
    job_id = uuid.uuid4()
    first = ReplyWriter(job_id)
    first.write("Hel")  # the worker was lost here; the job runs again
    again = ReplyWriter(job_id)
    again.write("Hi")
    again.close()
    reader = ReplyReader(job_id)
    assert list(reader.read(block_ms=10)) == ["Hel"] and reader.ended


def test_a_writer_whose_redis_fails_stops_writing_and_does_not_fail_the_job(monkeypatch, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    from flixly_site import shared

    shared._client.cache_clear()
    try:
        writer = ReplyWriter(uuid.uuid4())
        writer.write("Hel")
        writer.close()
        assert writer.broken
    finally:
        shared._client.cache_clear()


# --- end to end on Redis ----------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_streamed_completion_is_read_from_the_jobs_reply_stream(live_server, raw_key, funded):
    body = {"model": "local-chat", "messages": [{"role": "user", "content": "Why is the sky blue?"}], "stream": True}
    with httpx.stream(
        "POST",
        f"{live_server.url}/openai/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {raw_key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    job = Job.objects.get()
    assert contents(chunks) == job.text
    # Written by the worker: its attempt, the text and its end; words that come at once share an entry.
    assert 3 <= redis_client().xlen(stream_key(job.pk)) < len(job.text.split())


@pytest.mark.redis
def test_a_job_with_no_text_writes_nothing():
    # Every chat job has a writer: one that produced nothing (a no-op provider) must cost no Redis writes.
    job_id = uuid.uuid4()
    ReplyWriter(job_id).close()
    assert not redis_client().exists(stream_key(job_id))


@pytest.mark.django_db
def test_only_a_streamed_completion_asks_the_worker_for_a_live_reply(api, funded, no_worker):
    from tests.generation.conftest import generate

    generate(api, {"model": "local-chat", "type": "CHAT", "prompt": "hi"})
    assert Job.objects.get().live_reply is False  # nobody reads it live: the upstream is called as before


@pytest.mark.django_db
def test_a_reply_that_has_begun_is_not_stopped_by_a_cancel(user):
    from generation.services import JobCanceled, _progress_reporter

    job = Job.objects.create(
        user=user, model_id="local-chat", type="CHAT", route="local", status="running", cancel_requested=True
    )
    begun = type("Writer", (), {"started": True})()
    _progress_reporter(job, begun)(100)  # no JobCanceled: its reader has part of it, so it is delivered and charged
    with pytest.raises(JobCanceled):
        _progress_reporter(job, None)(100)  # a job without a live reply stops as before


@pytest.mark.django_db
def test_a_live_reply_past_the_deadline_is_not_canceled_but_goes_on(user):
    from generation.api.openai import _reply_outcome

    job = Job.objects.create(user=user, model_id="local-chat", type="CHAT", route="local", status="running")
    with pytest.raises(NotRetried, match="goes on and is charged"):
        _reply_outcome(job, deadline=0)
    job.refresh_from_db()
    assert job.status == "running" and not job.cancel_requested
