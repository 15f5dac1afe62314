"""Celery tasks: thin wrappers that take ids and call generation.services."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from generation.heartbeat import heartbeat_start, heartbeat_stop
from generation.models import Job, JobStatus
from generation.providers.base import ProviderError
from generation.services import (
    job_claim,
    job_execute,
    job_fail,
    job_folders_clear,
    job_requeue,
    job_take_over,
    jobs_reap,
    jobs_release_idempotency_keys,
    jobs_take_back,
    transient_retry_delay,
    worker_nodes_forget,
)
from generation.webhooks import deliveries_resend, delivery_attempt

logger = logging.getLogger("flixly.jobs")
MAX_TRANSIENT_RETRIES = 3
NOT_YET_COMMITTED_RETRIES = 10


@worker_ready.connect
def start_heartbeat(sender, **kwargs) -> None:
    """Sent once, in the worker's main process (never in a pool's child): one heartbeat per node."""
    heartbeat_start(name=sender.hostname, interval=settings.FLIXLY_WORKER_HEARTBEAT)


@worker_shutdown.connect
def stop_heartbeat(sender, **kwargs) -> None:
    heartbeat_stop()


@worker_ready.connect
def take_back_orphaned_jobs(sender, **kwargs) -> None:
    """This node starting again: the jobs it was running when it died are queued again at once, and the working
    folders they left are removed."""
    job_folders_clear(worker=sender.hostname)
    taken = jobs_take_back(worker=sender.hostname)
    if taken:
        logger.warning("%s took back %s job(s) its last run left running", sender.hostname, taken)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_job(self, job_id: str) -> None:
    worker, message = self.request.hostname or "", _message(self)
    job = job_claim(job_id=job_id, worker=worker, message=message)
    if job is None and (self.request.delivery_info or {}).get("redelivered"):
        # acks_late + reject_on_worker_lost: the worker that ran this died mid-job.
        job = job_take_over(job_id=job_id, worker=worker, message=message)
    if job is None:
        job = _claim_once_committed(self, job_id)
    if job is None:
        return  # already claimed, finished or canceled: a redelivered message does nothing
    attempt = job.attempts  # every outcome below applies only while this attempt still runs the job
    try:
        job_execute(job=job)
    except ProviderError as error:
        if (
            error.transient
            and self.request.retries < MAX_TRANSIENT_RETRIES
            and job_requeue(job_id=job_id, attempt=attempt, reason=str(error))
        ):
            raise self.retry(countdown=transient_retry_delay(self.request.retries)) from None
        job_fail(job_id=job_id, attempt=attempt, detail=f"provider error: {error}")
    except SoftTimeLimitExceeded:
        timed_out = "The generation timed out. Your credits were refunded."
        job_fail(job_id=job_id, attempt=attempt, detail="soft time limit", message=timed_out)
    except Exception as error:
        logger.exception("job %s crashed", job_id)
        job_fail(job_id=job_id, attempt=attempt, detail=f"crash: {error!r}")


def _message(task) -> str:
    """This delivery's message: a retry sends the task again under its id with one more retry."""
    return f"{task.request.id}:{task.request.retries}" if task.request.id else ""


def _claim_once_committed(task, job_id: str) -> Job | None:
    """The job is published inside its creating transaction, so a fast worker can look before the commit:
    a row still missing is looked for again shortly, a row that turned up queued meanwhile is claimed now."""
    status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
    if status == JobStatus.QUEUED:
        job = job_claim(job_id=job_id, worker=task.request.hostname or "", message=_message(task))
        if job is None:  # a claim race lost twice: the job waits for the reaper's requeue
            logger.warning("job %s is queued but its message claimed nothing; the reaper will requeue it", job_id)
        return job
    if status is None and task.request.retries < NOT_YET_COMMITTED_RETRIES:
        raise task.retry(countdown=0.5)
    if status is None:
        logger.warning("job %s was not found after %s looks: its submit did not commit", job_id, task.request.retries)
    return None


@shared_task
def reap_jobs() -> dict:
    return jobs_reap()


@shared_task
def release_idempotency_keys() -> int:
    return jobs_release_idempotency_keys()


@shared_task
def forget_worker_nodes() -> int:
    return worker_nodes_forget()


@shared_task
def deliver_webhook(delivery_id: str) -> None:
    # No time limit of its own: the attempt ends at its timeout (generation.outbound), so the webhooks worker
    # can run many attempts on threads, where Celery enforces none.
    delivery_attempt(delivery_id=delivery_id)


@shared_task
def resend_webhooks() -> int:
    return deliveries_resend()
