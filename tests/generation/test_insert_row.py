"""flixly_site.db.insert_row stores exactly what Model.save(force_insert=True) stores (both database passes)."""

import uuid

import pytest

from billing.models import EntryKind, LedgerEntry
from flixly_site.db import insert_row
from generation.models import AiModel, Job, JobEvent

# Each test runs in both passes: on SQLite, and on PostgreSQL in the pass that selects the postgres marker.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.parametrize(
        "db_pass", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=False
    ),
]


def new_job(user, **overrides) -> Job:
    fields = {
        "id": uuid.uuid4(),
        "user": user,
        "model": AiModel.objects.get(id="flux-dev"),
        "type": "TEXT_TO_IMAGE",
        "params": {"prompt": "ünïcode \"quotes\" and 'apostrophes'", "width": 1024, "nested": [1, {"a": None}]},
        "route": "local",
        "credits_charged": 3,
        "idempotency_key": "key-1",
        "request_hash": "f" * 64,
    }
    return Job(**{**fields, **overrides})


def stored(model, pk) -> dict:
    """The row as the database holds it, less what differs by design (key, creation time)."""
    values = model.objects.filter(pk=pk).values().get()
    for name in ("id", "idempotency_key", "created_at"):
        values.pop(name)
    return values


def test_a_job_row_matches_what_save_writes(user, db_pass):
    by_save, by_insert = new_job(user), new_job(user, idempotency_key="key-2")
    by_save.save(force_insert=True)
    insert_row(by_insert)
    assert by_insert.created_at is not None and not by_insert._state.adding
    assert stored(Job, by_insert.pk) == stored(Job, by_save.pk)
    assert Job.objects.get(pk=by_insert.pk).params == by_insert.params


def test_auto_primary_keys_come_back_like_save(user, db_pass):
    job = new_job(user)
    insert_row(job)
    event = JobEvent(job=job, kind="created", data={"creditsCharged": 3})
    insert_row(event)
    entry = LedgerEntry(user_id=user.pk, amount=-3, kind=EntryKind.DEBIT, balance_after=7, idempotency_key="d:1")
    insert_row(entry)
    assert JobEvent.objects.get(pk=event.pk).data == {"creditsCharged": 3}
    assert LedgerEntry.objects.get(pk=entry.pk).balance_after == 7
