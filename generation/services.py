"""Writes for generation: submit (charge + create + enqueue), run, complete, fail (+ refund once), cancel, reap."""

import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.functions import Now
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from accounts.models import User
from accounts.ratelimit import parallel_tasks_check
from accounts.selectors import KeyIdentity
from billing.balance_cache import BalanceMirror, balance_forget
from billing.services import CreditCapReached, Debit, InsufficientCredits, debit_prepare, wallet_lock, wallet_refund
from flixly_site.db import Together, run_together
from flixly_site.errors import (
    DO_NOT_RETRY,
    ApplicationError,
    Conflict,
    Forbidden,
    ServiceUnavailable,
    database_unreachable,
)
from generation.catalog import provider_for, route_for
from generation.kinds import CATEGORY, TYPE_LABELS
from generation.models import ACTIVE_STATUSES, Job, JobEvent, JobStatus, WorkerNode
from generation.outputs import input_store, local_copy, outputs_check, outputs_delete, outputs_store
from generation.providers.base import GenerationRequest
from generation.queue import publish_run_job
from generation.selectors import job_get, jobs_active_count_query
from generation.streams import ReplyWriter, streams_live
from generation.validation import ValidRequest
from generation.webhooks import job_event_record, owner_endpoint_url

logger = logging.getLogger("flixly.jobs")

IDEMPOTENCY_WINDOW = timedelta(hours=24)
KEY_CONSTRAINT = "job_idempotency_per_user"  # Job's unique (account, Idempotency-Key)
GENERIC_FAILURE = "The generation failed. Your credits were refunded."
QUEUED_REQUEUE_AFTER = timedelta(minutes=2)
MAX_ATTEMPTS = 2  # a job whose worker vanished is retried once, then failed and refunded
NODE_FORGOTTEN_AFTER = timedelta(days=7)  # staff still see a node that died, for a while


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class ModelUnavailable(ServiceUnavailable):
    """The caller chose a model whose upstream this server has no key for: the catalog already says it is
    unavailable, and there is no outage for an operator to fix, so it is a warning, not an error."""

    log_level = "warning"


class SubmitOutcomeUnknown(ApplicationError):
    """The database connection was lost at the commit, after the job was queued: the charge may stand."""

    default_message = (
        "The connection to our database was lost while your job was being saved, so it may or may not have been "
        "accepted. Look for it in GET /api/v1/jobs, or send the same request again with the same Idempotency-Key."
    )

    def __init__(self) -> None:
        # The openai client resends a 5xx on its own unless told not to, and without an Idempotency-Key.
        super().__init__(headers=DO_NOT_RETRY)


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool
    balance: int | None


def request_fingerprint(data: dict, image: bytes | None) -> str:
    body = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(body + hashlib.sha256(image or b"").digest()).hexdigest()


def job_refuse_disallowed(identity: KeyIdentity | None, request: ValidRequest) -> None:
    """A key limited to other models may not submit (or quote) this one."""
    if identity is not None and identity.allowed_models and request.model.id not in identity.allowed_models:
        raise Forbidden(f"This API key may not use {request.model.id}.")


def _existing_for_key(user: User, key: str | None, fingerprint: str, is_test: bool) -> Job | None:
    if not key:
        return None
    job = Job.objects.filter(user=user, idempotency_key=key).first()
    if job is None or job.created_at < timezone.now() - IDEMPOTENCY_WINDOW:
        return None
    if job.request_hash != fingerprint or job.is_test != is_test:  # test and live never replay each other
        raise IdempotencyConflict(
            "This Idempotency-Key was used with a different request (another body, or a key of the other mode)."
        )
    return job


def job_key_check(
    *, user: User, identity: KeyIdentity | None, key: str, body: dict, image: bytes | None = None
) -> None:
    """A dry run's look at its Idempotency-Key: the 409 the submit would answer, if any."""
    _existing_for_key(user, key, request_fingerprint(body, image), identity is not None and identity.is_test)


def job_submit(
    *,
    user: User,
    identity: KeyIdentity | None,
    request: ValidRequest,
    idempotency_key: str | None = None,
    body: dict | None = None,
    image: bytes | None = None,
    live_reply: bool = False,
) -> Submitted:
    """Charge, create and enqueue a job in one transaction; a replayed Idempotency-Key returns the first job.

    A replay is found by the job's unique (account, key) index, which refuses the new row: the charge and
    the row roll back, and the first job is looked up only then. The first submit of a key, by far the
    common case, so pays no lookup of its own. `body` and `image` are what the request sent: a replay
    must send the same (only a request with a key is fingerprinted)."""
    job_refuse_disallowed(identity, request)
    fingerprint = request_fingerprint(body or {}, image) if idempotency_key else ""
    is_test = identity is not None and identity.is_test
    route = route_for(request.model, is_test=is_test)
    if route is None:
        raise ModelUnavailable(f"{request.model.id} is not available on this server right now; nothing was charged.")
    job = Job(
        id=uuid.uuid4(),
        user=user,
        api_key_id=identity.key_id if identity else None,
        is_test=is_test,
        model=request.model,
        type=request.type,
        params=request.params,
        route=route,
        credits_charged=0 if is_test else request.price,
        idempotency_key=idempotency_key or None,
        request_hash=fingerprint,
        webhook_url=request.webhook_url or "",
        live_reply=live_reply and request.type == "CHAT",
    )
    if image is not None:
        job.input_file = input_store(user_id=user.pk, job_id=str(job.id), content=image)
    try:
        balance = _charge_and_enqueue_new_key(user, identity, job, request)
    except (IntegrityError, InsufficientCredits, CreditCapReached) as error:
        _forget_input(job)
        if isinstance(error, IntegrityError) and not _key_taken(error):
            raise  # another rule of the database broke: an error to see, not a replay
        return Submitted(_job_of_the_race(user, idempotency_key, fingerprint, is_test, error), False, None)
    except Exception:
        _forget_input(job)
        raise
    return Submitted(job, True, balance)


def _forget_input(job: Job) -> None:
    if not job.input_file:
        return
    try:
        default_storage.delete(job.input_file)
    except Exception:  # any storage backend's error: a stray file must not fail the answer
        logger.warning("input file of unsubmitted job %s not deleted", job.id, exc_info=True)


def _key_taken(error: IntegrityError) -> bool:
    """Whether the refused row was a job whose Idempotency-Key the account had used already."""
    diag = getattr(error.__cause__, "diag", None)
    if diag is not None:  # PostgreSQL names the constraint
        return diag.constraint_name == KEY_CONSTRAINT
    return f"{Job._meta.db_table}.idempotency_key" in str(error)  # SQLite names the columns


def _charge_and_enqueue_new_key(
    user: User, identity: KeyIdentity | None, job: Job, request: ValidRequest
) -> int | None:
    try:
        return _charge_and_enqueue(user, identity, job, request)
    except IntegrityError as error:
        if not (_key_taken(error) and _key_free_again(user, job.idempotency_key)):
            raise
    return _charge_and_enqueue(user, identity, job, request)  # once more, with the key free


def _key_free_again(user: User, key: str) -> bool:
    """Whether the key may name a new job now: its job was past 24 h (the key is taken off it here), or no
    job holds it any more (a concurrent request freed it, or rolled back)."""
    holders = Job.objects.filter(user=user, idempotency_key=key)
    expired = holders.filter(created_at__lt=timezone.now() - IDEMPOTENCY_WINDOW).update(idempotency_key=None)
    return expired > 0 or not holders.exists()


def _job_of_the_race(user: User, key: str | None, fingerprint: str, is_test: bool, error: Exception) -> Job:
    """A charge that failed because the Idempotency-Key names a job already (met by the unique index, a
    replay that found the credits spent, or a concurrent request that got there first): that job, or a
    409 for another body. Without a key, or with no such job, the failure stands."""
    existing = _existing_for_key(user, key, fingerprint, is_test)
    if existing is not None:
        return existing
    if key and isinstance(error, IntegrityError):
        raise IdempotencyConflict("This Idempotency-Key is in use by a request that is still being processed.")
    raise error


def _charge_and_enqueue(user: User, identity: KeyIdentity | None, job: Job, request: ValidRequest) -> int | None:
    debit = _debit(identity, job, request)
    job.enqueued_at = timezone.now()
    # The new balance goes out with the job's message, ahead of this commit, unless an outer transaction
    # decides the commit: then it is mirrored once that commits.
    ahead = debit is not None and not transaction.get_connection().in_atomic_block
    try:
        _charge_in_transaction(user, job, debit, mirror_ahead=ahead)
    except BaseException:
        if ahead:  # the balance may have gone out before the failure; dropping it is always safe
            balance_forget(user.pk)
        raise
    return debit.entry.balance_after if debit else None


def _charge_in_transaction(user: User, job: Job, debit: Debit | None, *, mirror_ahead: bool) -> None:
    created = JobEvent(job=job, kind="created", data={"creditsCharged": job.credits_charged})
    queued = False
    try:
        with transaction.atomic():
            # One statement with the debit, which locks the wallet row: concurrent submits of one account
            # count one after another (Debit reads the count again if one committed while it waited), and a
            # refusal rolls the job's rows back with the charge. Free (test-mode) jobs take the same lock
            # and raise the wallet's version, so the count stays exact across modes.
            parts = (jobs_active_count_query(user_id=user.pk, other_than=job.id), job, created)
            if debit is None:
                wallet_lock(user_id=user.pk)
            rows = debit.run(*parts, mirror_on_commit=not mirror_ahead) if debit else run_together(Together(*parts))
            [(active,)], *_ = rows
            parallel_tasks_check(plan_limit=user.plan.parallel_tasks, active=active)
            # last: a broker that is down rolls everything back, so nothing is charged
            _publish(job, debit.mirror if mirror_ahead else None)
            queued = True
    except DatabaseError as error:
        # Lost at the commit, once the job was queued: the database may have committed, so this is no
        # "nothing charged" 503 that a client would resend without an Idempotency-Key and pay twice.
        if queued and database_unreachable(error):
            raise SubmitOutcomeUnknown() from error
        raise


def _debit(identity: KeyIdentity | None, job: Job, request: ValidRequest) -> Debit | None:
    if job.credits_charged == 0:
        return None
    return debit_prepare(
        user_id=job.user_id,
        amount=job.credits_charged,
        idempotency_key=f"debit:{job.id}",
        reference_id=str(job.id),
        category=request.category,
        api_key_id=job.api_key_id,
        monthly_cap=identity.monthly_credit_cap if identity else None,
        reason=f"{request.model.name} ({TYPE_LABELS[request.type].lower()})",
    )


def _publish(job: Job, mirror: BalanceMirror | None = None) -> None:
    """Queue the job, with `mirror` in the same round trip when the broker is the shared store (else, or
    when Redis refused it, it is stored on commit)."""
    timeout = job.model.timeout_seconds
    also = (mirror.command(),) if mirror else ()
    try:
        replies = publish_run_job(str(job.id), soft=timeout, hard=timeout + 30, also=also)
    except (BrokerError, OSError, ConnectionError) as error:
        logger.error("broker unavailable at submit: %s", type(error).__name__)
        raise ServiceUnavailable("The job queue is unavailable; nothing was charged. Try again shortly.") from None
    if mirror is not None and (replies is None or isinstance(replies[0], Exception)):
        mirror.store_on_commit()


def job_event(job_id, kind: str, **data) -> None:
    JobEvent.objects.create(job_id=job_id, kind=kind, data=data)


# --- the worker side ------------------------------------------------------------------------------


def job_claim(*, job_id: str, worker: str = "", message: str = "") -> Job | None:
    """queued -> running on `worker` (its node name) by the queue `message`, once: a redelivered message
    finds nothing to claim."""
    now = timezone.now()
    # The owner's webhook endpoint comes with the job: completing it then records its event, or skips it,
    # without a query of its own.
    job = (
        Job.objects.select_related("model")
        .annotate(endpoint_url=owner_endpoint_url(), owner_active=F("user__is_active"))
        .filter(pk=job_id)
        .first()
    )
    if job is None:
        return None
    if not job.owner_active:  # submitted as staff deactivated the account, after its jobs were stopped
        _cancel(job)
        return None
    deadline = now + timedelta(seconds=job.model.timeout_seconds)
    with transaction.atomic():  # the state change and its event land together or not at all
        # On the attempt number read above: a claim and requeue by another worker meanwhile makes this one
        # claim nothing, rather than run under a number the job no longer has (its every write refused).
        claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, attempts=job.attempts).update(
            status=JobStatus.RUNNING,
            started_at=now,
            deadline_at=deadline,
            attempts=F("attempts") + 1,
            progress=0,
            worker=worker,
            message=message,
        )
        if not claimed:
            return None
        job_event(job_id, "started", attempt=job.attempts + 1)
    # The row now holds exactly these values: no need to read it back.
    job.status, job.started_at, job.deadline_at, job.progress, job.worker = JobStatus.RUNNING, now, deadline, 0, worker
    job.message, job.attempts = message, job.attempts + 1
    return job


def job_take_over(*, job_id: str, worker: str = "", message: str = "") -> Job | None:
    """The queue `message` redelivered because its worker died: requeue the orphaned running job and claim
    it, or fail and refund it once it has used its attempts. Nothing when another message runs the job now
    (the reaper replaced this one's attempt, or a retry did): that attempt is alive as far as we know."""
    job = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).first()
    if job is None:
        return None
    if job.message and message and job.message != message:
        logger.info("job %s: a stale redelivery of %s left alone the attempt of %s", job_id, message, job.message)
        return None
    if job.attempts >= MAX_ATTEMPTS:
        job_fail(job_id=job_id, attempt=job.attempts, detail="worker lost on every attempt")
        return None
    job_requeue(job_id=job_id, attempt=job.attempts, reason="worker lost")
    return job_claim(job_id=job_id, worker=worker, message=message)


class JobCanceled(Exception):
    pass


def _running(job_id, attempt: int):
    """The job's row while `attempt` is the one running: every write of a worker (and the reaper's) goes
    through it, so an attempt taken over (a redelivered message, the reaper) can no longer change the job."""
    return Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt)


def _progress_reporter(job: Job, reply: ReplyWriter | None = None):
    last = {"value": -10}

    def report(percent: int) -> None:
        percent = max(0, min(100, int(percent)))
        if percent - last["value"] < 10 and percent != 100:
            return
        last["value"] = percent
        still = _running(job.pk, job.attempts)
        if reply is None or not reply.started:  # a reply that has begun to reach its reader is delivered (and charged)
            still = still.filter(cancel_requested=False)
        updated = still.update(progress=percent)
        if not updated:
            raise JobCanceled()
        job_event(job.pk, "progress", progress=percent)

    return report


def _generation_request(job: Job, workdir: Path, on_text: Callable[[str], None] | None) -> GenerationRequest:
    image_path = local_copy(job.input_file, workdir) if job.input_file else None
    return GenerationRequest(
        job_id=str(job.id),
        type=job.type,
        model=job.model_id,
        upstream_model=job.model.upstream_model if job.route == job.model.route else job.model_id,
        params=job.params,
        workdir=workdir / "out",
        image_path=image_path,
        on_text=on_text,
        stand_in=_stand_in(job),
    )


def _stand_in(job: Job) -> str:
    """Why the local engine runs this job of a hosted model ("" when the model is the local engine's own)."""
    if job.route == job.model.route:
        return ""
    return "test" if job.is_test else "fallback"


STAND_IN_METADATA = {
    "test": {"testMode": True, "note": "Test keys always run on the built-in local engine."},
    "fallback": {"localFallback": True, "note": "The upstream is not configured; the local engine ran."},
}


JOB_FOLDERS = Path(tempfile.gettempdir()) / "flixly-jobs"  # a folder per worker node, a job's folder in it


def _node_folder(worker: str, *, create: bool = False) -> Path:
    folder = JOB_FOLDERS / (re.sub(r"[^\w@.-]", "_", worker) or "unnamed")
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def job_folders_clear(*, worker: str) -> None:
    """A worker node starting: the working folders its last run left (a job killed mid-video leaves hundreds of
    MB) belong to no running job any more."""
    shutil.rmtree(_node_folder(worker), ignore_errors=True)


def job_execute(*, job: Job) -> None:
    """Run a claimed job on its provider and record the outcome. ProviderError(transient) propagates for retry."""
    reply = ReplyWriter(job.pk) if job.live_reply and streams_live() else None
    try:
        with tempfile.TemporaryDirectory(prefix=f"{job.pk}-", dir=_node_folder(job.worker, create=True)) as folder:
            (Path(folder) / "out").mkdir()
            request = _generation_request(job, Path(folder), reply.write if reply else None)
            deadline = time.monotonic() + job.model.timeout_seconds
            try:
                result = provider_for(job.route).run(request, _progress_reporter(job, reply), deadline)
            except JobCanceled:
                job_cancel_finish(job=job)
                return
            outputs_check(job_type=job.type, result=result)
            outputs = outputs_store(user_id=job.user_id, job_id=str(job.id), attempt=job.attempts, result=result)
        job_complete(job=job, outputs=outputs, text=result.text or "", usage=result.usage, metadata=result.metadata)
    finally:
        if reply:
            reply.close()  # after the outcome is committed: a reader then finds the job as it ended


def job_complete(*, job: Job, outputs: list[dict], text: str, usage: dict, metadata: dict) -> bool:
    metadata = {**metadata, **STAND_IN_METADATA.get(_stand_in(job), {})}
    with transaction.atomic():
        done = _running(job.pk, job.attempts).update(
            status=JobStatus.COMPLETED,
            progress=100,
            outputs=outputs,
            text=text,
            usage=usage,
            metadata=metadata,
            completed_at=timezone.now(),
        )
        if done:
            job_event(job.pk, "completed", outputs=len(outputs))
            job_event_record(job, "job.completed")
    if not done:
        outputs_delete(outputs)  # canceled, reaped or taken over meanwhile: this attempt's outputs are not kept
        return False
    logger.info("job completed id=%s model=%s", job.pk, job.model_id)
    return True


def _wallet_first(job_id: uuid.UUID | str) -> None:
    """Lock the wallet of a charged job's account before a change of the job that may refund it. A submit
    locks the wallet before it writes a job row, and may then wait on one: a resubmit of an Idempotency-Key
    waits on the key's job in the (account, key) index until a change of that job commits. Were the
    change to take the wallet after the job, for its refund, each would wait for the other."""
    owner = Job.objects.filter(pk=job_id, credits_charged__gt=0).values_list("user_id", flat=True).first()
    if owner is not None:
        wallet_lock(user_id=owner)


def _refund(job: Job, reason: str) -> int:
    """Refund the job's charge once; the caller records job.refunded after the event that caused it."""
    if job.credits_charged == 0:
        return 0
    entry = wallet_refund(
        user_id=job.user_id,
        amount=job.credits_charged,
        job_id=job.pk,
        category=_category(job),
        api_key_id=job.api_key_id,
        reason=reason,
    )
    if entry is None:
        return 0
    Job.objects.filter(pk=job.pk).update(credits_refunded=job.credits_charged)
    job_event(job.pk, "refunded", credits=job.credits_charged)
    return job.credits_charged


def _report_refund(job: Job, refunded: int) -> None:
    if refunded:
        job_event_record(job, "job.refunded")


def _category(job: Job) -> str:
    return CATEGORY.get(job.type, "")


def job_fail(*, job_id, detail: str, message: str = GENERIC_FAILURE, attempt: int | None = None) -> bool:
    """Fail an unfinished job and refund it exactly once (the refund's key is the job id). With `attempt`
    (a worker's, or the reaper's), only while that attempt is the one running."""
    unfinished = (
        Job.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES) if attempt is None else _running(job_id, attempt)
    )
    with transaction.atomic():
        _wallet_first(job_id)
        failed = unfinished.update(
            status=JobStatus.FAILED, error=message, error_detail=detail[:4000], completed_at=timezone.now()
        )
        if not failed:
            return False
        job = Job.objects.get(pk=job_id)
        job_event(job_id, "failed", error=message)
        refunded = _refund(job, "Job failed")
        job_event_record(job, "job.failed")  # after the refund, which its creditsRefunded reports
        _report_refund(job, refunded)
    logger.warning("job failed id=%s detail=%s", job_id, detail[:300])
    return True


def job_requeue(*, job_id: uuid.UUID | str, attempt: int, reason: str) -> bool:
    """running -> queued for another attempt (a transient upstream error or a vanished worker), while
    `attempt` is the one running. A job its owner asked to cancel is canceled and refunded instead."""
    with transaction.atomic():
        moved = (
            _running(job_id, attempt)
            .filter(cancel_requested=False)  # one statement: a cancel after it finds the job queued and refunds it
            .update(status=JobStatus.QUEUED, progress=None, enqueued_at=timezone.now())
        )
        if moved:
            job_event(job_id, "retried", reason=reason)
    if not moved:
        _cancel_if_asked(job_id, attempt)
    return bool(moved)


def job_cancel(*, user: User, job_id) -> Job:
    """queued: canceled and refunded now; running: the worker stops at its next progress step; finished: no-op."""
    job = job_get(user=user, job_id=job_id)
    _cancel(job)
    job.refresh_from_db()
    return job


def _cancel(job: Job) -> None:
    with transaction.atomic():
        _wallet_first(job.pk)
        if Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELED, completed_at=timezone.now(), cancel_requested=True
        ):
            job_event(job.pk, "canceled")
            _report_refund(job, _refund(job, "Job canceled"))
        else:
            Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)


def jobs_stop_for_owner(*, user_id: int) -> int:
    """The account was deactivated: cancel its queued and running jobs as its own cancel would. How many."""
    jobs = list(Job.objects.filter(user_id=user_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)))
    for job in jobs:
        _cancel(job)
    return len(jobs)


def job_cancel_finish(*, job: Job) -> None:
    """The attempt stopped at a report because the job was canceled (or is no longer its own)."""
    _cancel_if_asked(job.pk, job.attempts)


def _cancel_if_asked(job_id: uuid.UUID | str, attempt: int) -> bool:
    """running -> canceled and refunded, if its owner asked to cancel it while `attempt` is the one running."""
    with transaction.atomic():
        _wallet_first(job_id)
        canceled = (
            _running(job_id, attempt)
            .filter(cancel_requested=True)
            .update(status=JobStatus.CANCELED, completed_at=timezone.now())
        )
        if canceled:
            job_event(job_id, "canceled")
            job = Job.objects.get(pk=job_id)
            _report_refund(job, _refund(job, "Job canceled"))
    return bool(canceled)


def jobs_reap(*, now=None) -> dict[str, int]:
    """Beat: re-enqueue jobs whose message was lost; retry or fail jobs whose worker vanished, found past their
    deadline (by `now`, this process's clock) or on a node that stopped beating (by the database's clock)."""
    now = now or timezone.now()
    counts = {"requeued": _publish_lost_messages(now), "retried": 0, "failed": 0}
    overdue = Job.objects.filter(status=JobStatus.RUNNING, deadline_at__lt=now).select_related("model")[:500]
    for job in overdue:
        _tally(counts, _retry_or_fail(job, "worker did not finish in time", "Stuck past its deadline after retries"))
    # Read after the pass above: a job it queued again is no longer running.
    for job in _jobs_on_silent_nodes()[:500]:
        _tally(counts, _retry_or_fail(job, "its worker stopped answering", "its worker was lost on every attempt"))
    return counts


def _publish_lost_messages(now) -> int:
    requeued = 0
    stale = Job.objects.filter(status=JobStatus.QUEUED, enqueued_at__lt=now - QUEUED_REQUEUE_AFTER)
    for job in stale.select_related("model")[:500]:
        if Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED, enqueued_at=job.enqueued_at).update(enqueued_at=now):
            _publish_quietly(job)
            requeued += 1
    return requeued


def _jobs_on_silent_nodes() -> QuerySet[Job]:
    """Running jobs of nodes that have not beaten for FLIXLY_WORKER_LOST_AFTER (or never have), started before
    that too: a node's first beat may land just after its first claim. A job claimed under no node name
    (older rows) is left to its deadline."""
    lost_before = Now() - timedelta(seconds=settings.FLIXLY_WORKER_LOST_AFTER)
    beating = WorkerNode.objects.filter(name=OuterRef("worker"), seen_at__gte=lost_before)
    return (
        Job.objects.filter(status=JobStatus.RUNNING, started_at__lt=lost_before)
        .exclude(worker="")
        .filter(~Exists(beating))
        .select_related("model")
    )


def _tally(counts: dict[str, int], outcome: str | None) -> None:
    if outcome:
        counts[outcome] += 1


def jobs_take_back(*, worker: str) -> int:
    """A worker node starting: the jobs its last run left running (it was killed, or its machine lost) cannot
    still be running there, so they are queued again now, not when the reaper finds them past their deadline."""
    orphans = Job.objects.filter(status=JobStatus.RUNNING, worker=worker).exclude(worker="").select_related("model")
    outcomes = [_retry_or_fail(job, "its worker restarted", "its worker died on every attempt") for job in orphans]
    return sum(1 for outcome in outcomes if outcome)


def _retry_or_fail(job: Job, reason: str, final: str) -> str | None:
    """A running job whose attempt was lost: queued again while it has attempts left, else failed and refunded.
    Which it was ("retried", "failed"), or None when the attempt moved on meanwhile."""
    if job.attempts < MAX_ATTEMPTS:
        if job_requeue(job_id=job.pk, attempt=job.attempts, reason=reason):
            _publish_quietly(job)
            return "retried"
        return None
    return "failed" if job_fail(job_id=job.pk, attempt=job.attempts, detail=final) else None


def _publish_quietly(job: Job) -> None:
    try:
        _publish(job)
    except ServiceUnavailable:
        logger.warning("reaper could not publish job %s; it will try again", job.pk)


def worker_node_beat(*, name: str) -> None:
    """Worker node `name` is alive: one UPDATE, an INSERT at its first beat. Stamped with the database's clock,
    which the reaper reads too, so a step of the worker machine's clock cannot make it look silent."""
    if WorkerNode.objects.filter(name=name).update(seen_at=Now()):
        return
    try:
        with transaction.atomic():
            WorkerNode.objects.create(name=name, seen_at=Now())
    except IntegrityError:  # the same node name started twice at once: the other one's row is there now
        WorkerNode.objects.filter(name=name).update(seen_at=Now())


def worker_nodes_forget() -> int:
    """Nodes long gone (every restart under a new hostname leaves one behind): their jobs were rescued long ago."""
    deleted, _ = WorkerNode.objects.filter(seen_at__lt=Now() - NODE_FORGOTTEN_AFTER).delete()
    return deleted


def jobs_release_idempotency_keys(*, now=None) -> int:
    now = now or timezone.now()
    return Job.objects.filter(idempotency_key__isnull=False, created_at__lt=now - IDEMPOTENCY_WINDOW).update(
        idempotency_key=None
    )


def transient_retry_delay(attempt: int) -> int:
    return min(60, 5 * 2**attempt)
