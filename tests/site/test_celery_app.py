from flixly_site.celery import app


def test_celery_speaks_only_json():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_tasks_are_acknowledged_late_and_requeued_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_tasks_have_soft_and_hard_time_limits():
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_beat_schedule_names_registered_tasks(db):
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
