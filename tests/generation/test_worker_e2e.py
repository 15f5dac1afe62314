"""End to end with real `celery worker` processes: submit through the API, let a worker run the job, decode the file.

The SQLite pass runs on the filesystem broker (the embedded default), the PostgreSQL pass on Redis. How the worker
reaches the test database is explained in tests/generation/worker_helpers.py: on SQLite the in-memory test
database is moved into a file for this module (`worker_var_dir`), on PostgreSQL the worker gets the URL of
`test_<name>`; the filesystem broker's folders are private to this session. Every test is `transaction=True`: the
worker only sees committed rows.

Tests marked `worker` keep Celery non-eager (tests/conftest.py), so the API really publishes to the broker.
"""

import io
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import imageio_ffmpeg
import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone
from PIL import Image

from accounts.models import Plan
from accounts.services import user_set_plan
from billing.models import EntryKind, LedgerEntry
from billing.services import wallet_adjust, wallet_balance
from flixly_site.celery import app
from generation.catalog import catalog_sync
from generation.models import Job, JobEvent, JobStatus, WorkerNode
from generation.services import GENERIC_FAILURE, jobs_reap
from generation.tasks import run_job
from generation.webhooks import PING, endpoint_set, event_record
from tests.generation.worker_helpers import (
    WorkerPool,
    celery_conf,
    configured_broker,
    procfile_pool,
    shared_sqlite_file,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True)]
WORKER = pytest.mark.worker  # every test that starts a worker; the broker-down test deliberately has none

# Scenarios that run in both passes: the SQLite pass (filesystem broker) and the PostgreSQL pass (Redis broker).
BOTH_PASSES = pytest.mark.parametrize(
    "db_pass",
    [
        pytest.param("sqlite", id="sqlite-filesystem"),
        pytest.param("postgres", id="postgres-redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ],
)
FUNDS = 100
JOB_TIMEOUT = 60.0  # seconds any single job may take to finish under a worker
IMAGE = {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "a red fox", "width": 512, "height": 384}
SHORT_VIDEO = {
    "model": "local-video",
    "type": "TEXT_TO_VIDEO",
    "prompt": "blue waves",
    "duration": 2,
    "resolution": "480p",
}
# The largest clip the local model allows (1080p is not in its catalog entry): about 2.5 s of work for a worker.
LONG_VIDEO = {
    "model": "local-video",
    "type": "TEXT_TO_VIDEO",
    "prompt": "a fox runs through a neon city at night",
    "duration": 10,
    "resolution": "720p",
}


@pytest.fixture(scope="module", autouse=True)
def worker_var_dir(django_db_setup, django_db_blocker, tmp_path_factory) -> Path:
    """For the whole module: a test database workers can open, and a broker no other test session reads."""
    folder = tmp_path_factory.mktemp("worker-e2e")
    with (
        django_db_blocker.unblock(),
        shared_sqlite_file(folder),
        configured_broker(folder / "var"),
    ):
        yield folder / "var"


@pytest.fixture
def customer(user):
    """`user` on a plan whose rate limit allows polling and running jobs side by side, with FUNDS credits."""
    catalog_sync()
    user_set_plan(user=user, plan=Plan.objects.get(slug="pro-plus"))
    wallet_adjust(user_id=user.pk, amount=FUNDS, reason="e2e funds")
    return user


@pytest.fixture
def workers(tmp_path, worker_var_dir):
    """Start workers with `workers.start()`; each is killed with its process group at teardown, its log in tmp_path."""
    assert not app.conf.task_always_eager, "a test that starts a worker must be marked `worker`"
    pool = WorkerPool(log_dir=tmp_path, var_dir=worker_var_dir)
    yield pool
    pool.stop_all()
    print(pool.tails())  # pytest shows it only for a failed test


def test_a_live_server_thread_leaves_the_shared_file_database_open():
    """pytest-django's session-wide live_server shares this connection with its request threads, which close it
    after each request: a no-op while the database is in memory, but here it is a file, and a close from a
    lingering keep-alive thread under a query of the test's crashed the whole run (a segfault)."""
    connection.ensure_connection()
    shared = connections[DEFAULT_DB_ALIAS]

    def as_a_request_thread_ends() -> None:
        connections[DEFAULT_DB_ALIAS] = shared  # as Django's live server threads take the override
        connections.close_all()

    shared.inc_thread_sharing()
    try:
        thread = threading.Thread(target=as_a_request_thread_ends)
        thread.start()
        thread.join()
    finally:
        shared.dec_thread_sharing()
    assert shared.connection is not None
    assert Job.objects.count() == 0  # and it still answers


def submit(api, body: dict) -> dict:
    response = api.post("/api/v1/generate", body, content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()["data"]


def get_job(api, job_id: str) -> dict:
    response = api.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def wait_finished(api, job_id: str, workers, timeout: float = JOB_TIMEOUT) -> dict:
    """Poll GET /api/v1/jobs/{id} until the job is completed, failed or canceled."""
    last: dict = {}

    def finished() -> dict | None:
        response = api.get(f"/api/v1/jobs/{job_id}")
        if response.status_code == 429:  # polling is an API client too; wait like one
            return None
        assert response.status_code == 200, response.content
        last.update(response.json()["data"])
        return dict(last) if last["status"] in ("completed", "failed", "canceled") else None

    return wait_until(finished, timeout=timeout, interval=0.25, describe=lambda: f"job {last}\n{workers.tails()}")


def wait_claimed(job_id: str, workers, attempt: int = 1) -> None:
    """Poll the rows directly (fast, no rate limit) until a worker has claimed the job for `attempt` and said so.

    The claim (an UPDATE) and its "started" event are two statements in two transactions (product finding: they
    are not atomic): killing the worker between them loses the event, so the kill waits for both.
    """

    def claimed() -> bool:
        job = Job.objects.get(pk=job_id)
        started = JobEvent.objects.filter(job_id=job_id, kind="started").count()
        return job.status == JobStatus.RUNNING and job.attempts == attempt and started == attempt

    wait_until(claimed, timeout=JOB_TIMEOUT, interval=0.02, describe=workers.tails)


def download(api, url: str) -> bytes:
    assert url.startswith(settings.SITE_URL), url
    response = api.get(url.removeprefix(settings.SITE_URL))
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def assert_png(content: bytes, size: tuple[int, int]) -> None:
    with Image.open(io.BytesIO(content)) as image:
        image.load()  # decodes every pixel: a truncated file fails here
        assert (image.format, image.size) == ("PNG", size)


def assert_mp4(content: bytes, size: tuple[int, int], seconds: float, fps: int = 24) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        path.write_bytes(content)
        frames, duration = imageio_ffmpeg.count_frames_and_secs(str(path))
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        first = next(reader)
        reader.close()
    assert frames == round(seconds * fps)
    assert duration == pytest.approx(seconds, abs=0.1)
    assert tuple(meta["size"]) == size
    assert len(first) == size[0] * size[1] * 3  # one decoded RGB frame


def events(job_id: str) -> dict[str, int]:
    kinds = list(JobEvent.objects.filter(job_id=job_id).values_list("kind", flat=True))
    return {kind: kinds.count(kind) for kind in set(kinds)}


def ledger(job_id: str) -> dict[str, list[int]]:
    rows = LedgerEntry.objects.filter(reference_type="job", reference_id=str(job_id)).values_list("kind", "amount")
    found: dict[str, list[int]] = {}
    for kind, amount in rows:
        found.setdefault(kind, []).append(amount)
    return found


def reap_after_deadlines() -> dict[str, int]:
    """A reaper tick an hour from now: every running job is past its deadline (local-video's is 15 minutes)."""
    return jobs_reap(now=timezone.now() + timedelta(hours=1))


# --- 1 and 2: a job end to end ------------------------------------------------------------------------------


def render_short_video(api, workers) -> dict:
    """Submit SHORT_VIDEO, wait for it and check the MP4 it made; the submitted job's data."""
    video = submit(api, SHORT_VIDEO)
    done = wait_finished(api, video["jobId"], workers)
    assert done["status"] == "completed", done
    assert done["outputs"][0]["durationSeconds"] == pytest.approx(2.0, abs=0.1)
    assert_mp4(download(api, done["outputUrl"]), (854, 480), 2.0)
    return video


@WORKER
def test_filesystem_broker_worker_renders_an_image_and_a_video(api, customer, workers):
    assert app.conf.broker_url.startswith("filesystem"), "the SQLite pass runs on the embedded broker"
    workers.start()

    image = submit(api, IMAGE)
    done = wait_finished(api, image["jobId"], workers)
    assert done["status"] == "completed", done
    assert done["outputs"][0]["contentType"] == "image/png"
    assert_png(download(api, done["outputUrl"]), (512, 384))

    video = render_short_video(api, workers)

    charged = image["creditsCharged"] + video["creditsCharged"]
    assert charged > 0
    assert wallet_balance(user_id=customer.pk) == FUNDS - charged
    for job in (image, video):
        assert ledger(job["jobId"]) == {EntryKind.DEBIT: [-job["creditsCharged"]]}
        assert events(job["jobId"]).get("completed") == 1


@pytest.mark.postgres
@pytest.mark.redis
@WORKER
def test_redis_broker_worker_renders_a_video_on_postgresql(api, customer, workers):
    assert app.conf.broker_url.startswith("redis"), "the PostgreSQL pass runs on Redis"
    workers.start()

    video = render_short_video(api, workers)
    assert wallet_balance(user_id=customer.pk) == FUNDS - video["creditsCharged"]
    assert ledger(video["jobId"]) == {EntryKind.DEBIT: [-video["creditsCharged"]]}


# --- webhooks: their own queue and worker, as in the Procfile ----------------------------------------------


@BOTH_PASSES
@WORKER
def test_a_webhooks_worker_delivers_the_events_of_jobs_the_jobs_worker_ran(db_pass, api, customer, workers, receiver):
    from standardwebhooks.webhooks import Webhook

    secret = api.put("/api/v1/webhook", {"url": receiver.url}, content_type="application/json").json()["data"]
    jobs_worker = workers.start()
    job = submit(api, IMAGE)
    assert wait_finished(api, job["jobId"], workers)["status"] == "completed"
    time.sleep(1)
    assert receiver.posts() == []  # the jobs' worker does not deliver: the delivery waits on its own queue
    loopback = {"FLIXLY_OUTBOUND_ALLOW_HTTP": "true", "FLIXLY_OUTBOUND_ALLOW_PRIVATE": "true"}
    workers.start(queue="webhooks", env=loopback)
    wait_until(lambda: receiver.posts() or None, timeout=JOB_TIMEOUT, interval=0.1, describe=workers.tails)
    post = receiver.posts()[0]
    event = Webhook(secret["secret"]).verify(post.body, post.headers)
    assert (event["event"], event["data"]["jobId"]) == ("job.completed", job["jobId"])
    assert "Task generation.tasks.deliver_webhook[" not in jobs_worker.log()


@BOTH_PASSES
@WORKER
def test_endpoints_that_never_answer_do_not_hold_up_another_accounts_webhooks(
    db_pass, api, customer, workers, receiver
):
    from tests.factories import UserFactory
    from tests.fakes import FakeWebhookReceiver

    loopback = {"FLIXLY_OUTBOUND_ALLOW_HTTP": "true", "FLIXLY_OUTBOUND_ALLOW_PRIVATE": "true"}
    with FakeWebhookReceiver() as stalled:
        stalled.delay_seconds = 30  # past every attempt's 10 s
        for _ in range(4):  # four accounts whose endpoints hang, each with an event ahead of ours
            other = UserFactory()
            endpoint_set(user=other, url=stalled.url)
            event_record(user_id=other.pk, event=PING, data={})
        api.put("/api/v1/webhook", {"url": receiver.url}, content_type="application/json")
        workers.start(queue="webhooks", env=loopback, **procfile_pool("webhooks"))
        wait_until(lambda: len(stalled.posts()) == 4 or None, timeout=JOB_TIMEOUT, interval=0.1, describe=workers.tails)
        started = time.monotonic()
        test = api.post("/api/v1/webhook/test").json()["data"]
        assert (test["status"], test["statusCode"]) == ("succeeded", 200)
        assert time.monotonic() - started < 5  # not behind the hanging attempts


# --- 3: a worker SIGKILLed in the middle of a job --------------------------------------------------------------


@BOTH_PASSES
@WORKER
def test_sigkilled_worker_job_is_retried_by_the_reaper_and_completes_once(db_pass, api, customer, workers):
    first = workers.start()
    job = submit(api, LONG_VIDEO)
    price = job["creditsCharged"]
    wait_claimed(job["jobId"], workers)
    assert first.kill() == -9

    # Nothing finishes it now: the filesystem broker dropped the message when it was read, Redis keeps it unacked
    # for its one-hour visibility timeout. The job stays running until its deadline passes.
    stuck = Job.objects.get(pk=job["jobId"])
    assert (stuck.status, stuck.attempts, stuck.credits_refunded) == (JobStatus.RUNNING, 1, 0)

    assert reap_after_deadlines() == {"requeued": 0, "retried": 1, "failed": 0}
    assert Job.objects.get(pk=job["jobId"]).status == JobStatus.QUEUED
    # The next tick (30 s later) finds the requeued job fresh: it neither publishes it again nor fails it.
    assert jobs_reap(now=timezone.now() + timedelta(seconds=30)) == {"requeued": 0, "retried": 0, "failed": 0}

    workers.start()
    done = wait_finished(api, job["jobId"], workers)
    assert done["status"] == "completed", done
    assert_mp4(download(api, done["outputUrl"]), (1280, 720), 10.0)

    for _ in range(2):  # later reaper ticks leave a finished job alone
        assert reap_after_deadlines() == {"requeued": 0, "retried": 0, "failed": 0}
    final = Job.objects.get(pk=job["jobId"])
    assert (final.status, final.attempts, final.credits_refunded) == (JobStatus.COMPLETED, 2, 0)
    kinds = events(job["jobId"])
    kinds.pop("progress", None)
    assert kinds == {"created": 1, "started": 2, "retried": 1, "completed": 1}
    assert ledger(job["jobId"]) == {EntryKind.DEBIT: [-price]}
    assert wallet_balance(user_id=customer.pk) == FUNDS - price


@BOTH_PASSES
@WORKER
def test_job_whose_workers_die_twice_fails_with_exactly_one_refund(db_pass, api, customer, workers):
    job = submit(api, LONG_VIDEO)
    price = job["creditsCharged"]
    assert wallet_balance(user_id=customer.pk) == FUNDS - price

    workers.start()
    wait_claimed(job["jobId"], workers, attempt=1)
    assert workers.started[-1].kill() == -9
    assert reap_after_deadlines() == {"requeued": 0, "retried": 1, "failed": 0}

    workers.start()
    wait_claimed(job["jobId"], workers, attempt=2)
    assert workers.started[-1].kill() == -9
    assert reap_after_deadlines() == {"requeued": 0, "retried": 0, "failed": 1}
    assert reap_after_deadlines() == {"requeued": 0, "retried": 0, "failed": 0}  # a second tick refunds nothing

    failed = get_job(api, job["jobId"])
    assert (failed["status"], failed["error"], failed["creditsRefunded"]) == ("failed", GENERIC_FAILURE, price)
    assert failed["outputUrl"] is None
    assert ledger(job["jobId"]) == {EntryKind.DEBIT: [-price], EntryKind.REFUND: [price]}
    assert wallet_balance(user_id=customer.pk) == FUNDS
    kinds = events(job["jobId"])
    assert (kinds["started"], kinds["retried"], kinds["failed"], kinds["refunded"]) == (2, 1, 1, 1)
    assert "completed" not in kinds


@BOTH_PASSES
@WORKER
def test_a_worker_restarted_after_a_crash_takes_its_jobs_back_at_once(db_pass, api, customer, workers):
    # A killed worker's job stayed "running" until the reaper passed its deadline: 15 min for a video, the
    # account's parallel slot held all along. The same worker (same node name) coming back takes it back.
    job = submit(api, LONG_VIDEO)
    first = workers.start()
    wait_claimed(job["jobId"], workers, attempt=1)
    assert first.kill() == -9

    workers.start(hostname=first.hostname)
    done = wait_finished(api, job["jobId"], workers)  # no reaper: the restart alone
    assert done["status"] == "completed", done
    final = Job.objects.get(pk=job["jobId"])
    assert (final.attempts, final.credits_refunded) == (2, 0)
    assert ledger(job["jobId"]) == {EntryKind.DEBIT: [-job["creditsCharged"]]}
    kinds = events(job["jobId"])
    assert (kinds["started"], kinds["retried"], kinds["completed"]) == (2, 1, 1)


# --- a worker node's heartbeat, and a node lost for good ----------------------------------------------------

# A node beating every second, judged lost after two silent seconds (the defaults: 30 s and 90 s).
FAST_HEARTBEAT = {"FLIXLY_WORKER_HEARTBEAT": "1", "FLIXLY_WORKER_LOST_AFTER": "2"}


def seen_at(node: str):
    return WorkerNode.objects.filter(name=node).values_list("seen_at", flat=True).first()


def wait_beat_during(job_id: str, worker) -> None:
    """Until `worker`'s node beats after it claimed the job, which is still running then."""
    started = Job.objects.get(pk=job_id).started_at
    wait_until(lambda: (seen_at(worker.hostname) or started) > started, timeout=5, interval=0.05, describe=worker.tail)
    assert Job.objects.get(pk=job_id).status == JobStatus.RUNNING


@WORKER
def test_a_threads_pool_worker_keeps_beating_while_it_runs_a_long_job(api, customer, workers):
    worker = workers.start(pool="threads", env=FAST_HEARTBEAT)
    job = submit(api, LONG_VIDEO)
    wait_claimed(job["jobId"], workers)
    wait_beat_during(job["jobId"], worker)
    assert wait_finished(api, job["jobId"], workers)["status"] == "completed"


@BOTH_PASSES
@WORKER
def test_a_worker_lost_for_good_has_its_job_taken_back_once_its_node_falls_silent(
    db_pass, api, customer, workers, settings
):
    # A killed worker that never comes back under its node name (a lost machine, a container with a new
    # hostname) left its job running, and the account's parallel slot held, until the job's deadline: 15 min
    # for a video. Its node stops beating: the reaper takes the job back once it has been silent long enough.
    settings.FLIXLY_WORKER_LOST_AFTER = 2
    first = workers.start(env=FAST_HEARTBEAT)
    job = submit(api, LONG_VIDEO)
    wait_claimed(job["jobId"], workers)
    # The solo pool runs the job on the worker's event loop: the node beats all the same.
    wait_beat_during(job["jobId"], first)
    assert first.kill() == -9
    assert Job.objects.get(pk=job["jobId"]).status == JobStatus.RUNNING

    workers.start(env=FAST_HEARTBEAT)  # a replacement under another node name: nothing of its own to take back
    wait_until(lambda: jobs_reap()["retried"], timeout=JOB_TIMEOUT, interval=0.2, describe=workers.tails)
    done = wait_finished(api, job["jobId"], workers)
    assert done["status"] == "completed", done
    assert_mp4(download(api, done["outputUrl"]), (1280, 720), 10.0)

    final = Job.objects.get(pk=job["jobId"])
    assert (final.attempts, final.worker, final.credits_refunded) == (2, workers.started[-1].hostname, 0)
    kinds = events(job["jobId"])
    assert (kinds["started"], kinds["retried"], kinds["completed"]) == (2, 1, 1)
    assert ledger(job["jobId"]) == {EntryKind.DEBIT: [-job["creditsCharged"]]}
    assert jobs_reap() == {"requeued": 0, "retried": 0, "failed": 0}


# --- 4: the broker is down when a job is submitted -----------------------------------------------------------


@pytest.fixture
def broker_down(monkeypatch):
    """A Redis broker on a closed port, and no eager shortcut: the publish really fails."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery's conf prefers this variable over broker_url
    with celery_conf(broker_url="redis://127.0.0.1:9/0", task_always_eager=False):
        yield


@BOTH_PASSES
def test_broker_down_at_submit_is_503_and_charges_nothing(db_pass, api, customer, broker_down):
    ledger_before = list(LedgerEntry.objects.filter(user=customer).values_list("id", flat=True))

    response = api.post("/api/v1/generate", IMAGE, content_type="application/json")

    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert (error["code"], error["status"]) == ("service_unavailable", 503)
    assert "nothing was charged" in error["message"]
    assert wallet_balance(user_id=customer.pk) == FUNDS
    assert list(LedgerEntry.objects.filter(user=customer).values_list("id", flat=True)) == ledger_before
    assert not Job.objects.exists()
    assert not JobEvent.objects.exists()


# --- 5: the same message delivered more than once -------------------------------------------------------------


@BOTH_PASSES
@WORKER
def test_redelivered_run_job_messages_run_the_job_once(db_pass, api, customer, workers):
    job = submit(api, IMAGE)
    run_job.apply_async(args=[job["jobId"]])
    run_job.apply_async(args=[job["jobId"]])

    # Three messages for one job, and two pool processes that may take them at the same moment.
    worker = workers.start(pool="prefork", concurrency=2)
    done = wait_finished(api, job["jobId"], workers)
    assert done["status"] == "completed", done
    wait_until(
        lambda: len(worker.lines_with("generation.tasks.run_job[", "succeeded in")) >= 3,
        timeout=JOB_TIMEOUT,
        describe=worker.tail,
    )

    final = Job.objects.get(pk=job["jobId"])
    assert (final.status, final.attempts, final.credits_refunded) == (JobStatus.COMPLETED, 1, 0)
    kinds = events(job["jobId"])
    assert (kinds["started"], kinds["completed"]) == (1, 1)
    assert "failed" not in kinds
    assert "refunded" not in kinds
    assert ledger(job["jobId"]) == {EntryKind.DEBIT: [-job["creditsCharged"]]}
    assert wallet_balance(user_id=customer.pk) == FUNDS - job["creditsCharged"]
    assert_png(download(api, done["outputUrl"]), (512, 384))
