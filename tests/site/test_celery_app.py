from flixly_site.celery import app


def test_celery_speaks_only_json():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_tasks_are_acknowledged_late_and_requeued_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_a_worker_that_loses_the_broker_stops_the_jobs_whose_messages_go_back():
    # The broker hands those messages out again: the job would otherwise run twice at once.
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is True


def test_tasks_have_soft_and_hard_time_limits():
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_beat_schedule_names_registered_tasks(db):
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks


def test_what_a_worker_prints_is_logged_as_information_not_a_warning():
    # The console mailer of `make run` prints the worker's e-mails: they are not warnings.
    assert app.conf.worker_redirect_stdouts_level == "INFO"


def test_a_job_and_its_retry_end_inside_the_redis_visibility_timeout():
    from generation.models import MAX_JOB_SECONDS

    hard, reaper_tick = MAX_JOB_SECONDS + 30, app.conf.beat_schedule["reap-jobs"]["schedule"]
    assert 2 * (hard + reaper_tick) < 3600  # the visibility_timeout set for Redis brokers in settings


def test_the_rescue_tasks_do_not_wait_behind_the_queued_jobs():
    # The reaper and the webhook resender went on the jobs' FIFO queue: in a trial no reaper ran for 6 min 44 s
    # while 70 jobs were queued ahead of it. They go to the webhooks worker, whose tasks are short.
    from django.conf import settings

    from flixly_site.celery import app
    from generation.tasks import run_job

    route = app.amqp.router.route
    jobs_queue = route({}, run_job.name)["queue"].name
    for task in ("generation.tasks.reap_jobs", "generation.tasks.resend_webhooks"):
        assert route({}, task)["queue"].name == settings.FLIXLY_WEBHOOK_QUEUE != jobs_queue
