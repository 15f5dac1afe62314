"""flixly_site.db.run_together: rows stored exactly as Model.save(force_insert=True) stores them, statements run
in order, errors as Django's (both database passes)."""

import uuid

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import EntryKind, LedgerEntry, Wallet
from flixly_site.db import InsertFrom, Lead, Together, run_together
from generation.models import AiModel, Job, JobEvent, JobStatus

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
    run_together(by_insert)
    assert by_insert.created_at is not None and not by_insert._state.adding
    assert stored(Job, by_insert.pk) == stored(Job, by_save.pk)
    assert Job.objects.get(pk=by_insert.pk).params == by_insert.params


def _sent(value) -> tuple:
    """A value as the database driver gets it, comparable: psycopg's wrappers by type and content."""
    return type(value), getattr(value, "obj", value), getattr(value, "dumps", None)


def test_every_value_an_insert_sends_is_the_one_save_would_send(user, db_pass):
    from django.db import connection

    from flixly_site.db import _db_value, _insert_sql

    job = new_job(
        user,
        enqueued_at=timezone.now(),
        started_at=None,
        api_key_id=None,
        idempotency_key=None,
        outputs=["a.png"],
        usage={"tokens": 3},
        status=JobStatus.QUEUED,  # an enum member: converted, not sent as it is
        progress=True,  # a bool in an integer field: converted to 1 as save() does
    )
    entry = LedgerEntry(user_id=user.pk, amount=-3, kind=EntryKind.DEBIT, balance_after=7, idempotency_key="d:9")
    for instance in (job, JobEvent(job=job, kind="created", data={"creditsCharged": 3}), entry):
        _, fields, _ = _insert_sql(type(instance), connection.vendor, (), "")
        for field, fast in fields:
            if getattr(field, "auto_now_add", False):
                continue  # now() at each call
            expected = field.get_db_prep_save(field.pre_save(instance, True), connection)
            assert _sent(_db_value(instance, field, fast, connection)) == _sent(expected), field.name


def test_auto_primary_keys_come_back_like_save(user, db_pass):
    job = new_job(user)
    run_together(job)
    event = JobEvent(job=job, kind="created", data={"creditsCharged": 3})
    run_together(event)
    entry = LedgerEntry(user_id=user.pk, amount=-3, kind=EntryKind.DEBIT, balance_after=7, idempotency_key="d:1")
    run_together(entry)
    assert JobEvent.objects.get(pk=event.pk).data == {"creditsCharged": 3}
    assert LedgerEntry.objects.get(pk=entry.pk).balance_after == 7


def test_several_rows_in_one_call_are_all_stored_with_their_keys(user, db_pass):
    job = new_job(user)
    event = JobEvent(job=job, kind="created", data={"creditsCharged": 3})
    run_together(job, event)
    assert Job.objects.get(pk=job.pk).credits_charged == 3
    assert JobEvent.objects.get(pk=event.pk).job_id == job.pk


def test_a_unique_violation_in_a_batch_is_djangos_integrity_error_and_nothing_of_it_stays(user, db_pass):
    run_together(new_job(user, idempotency_key="taken"))
    job = new_job(user, idempotency_key="taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        run_together(job, JobEvent(job=job, kind="created"))
    assert Job.objects.filter(idempotency_key="taken").count() == 1
    assert not JobEvent.objects.exists()


def test_the_connection_works_normally_after_a_failed_batch(user, db_pass):
    run_together(new_job(user, idempotency_key="taken"))
    job = new_job(user, idempotency_key="taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        run_together(job, JobEvent(job=job, kind="created"))
    other = new_job(user, idempotency_key="free")
    run_together(other, JobEvent(job=other, kind="created"))
    assert Job.objects.filter(pk=other.pk).exists()


def test_each_statement_sees_the_ones_before_it_and_returns_its_rows(user, db_pass):
    job = new_job(user)
    count = ("SELECT count(*) FROM generation_job WHERE user_id = %s", [user.pk])
    rows = run_together(count, job, JobEvent(job=job, kind="created"), count)
    assert rows[0] == [(0,)] and rows[1] == [(job.pk,)] and rows[3] == [(1,)]
    assert rows[2] == [(JobEvent.objects.get().pk,)]


def test_an_insert_from_takes_its_computed_columns_from_the_source_row(user, db_pass):
    Wallet.objects.update_or_create(user=user, defaults={"balance": 41})
    entry = LedgerEntry(user_id=user.pk, amount=-1, kind=EntryKind.DEBIT, balance_after=0, idempotency_key="d:2")
    source = ("FROM billing_wallet WHERE user_id = %s", [user.pk])
    [rows] = run_together(InsertFrom(entry, source, {"balance_after": "balance"}))
    assert rows == [(entry.pk, 41)] and entry.balance_after == 41 and not entry._state.adding
    assert LedgerEntry.objects.get(pk=entry.pk).balance_after == 41


def test_an_insert_from_a_source_that_finds_nothing_inserts_nothing(user, db_pass):
    entry = LedgerEntry(user_id=user.pk, amount=-1, kind=EntryKind.DEBIT, balance_after=0, idempotency_key="d:3")
    source = ("FROM billing_wallet WHERE user_id = %s", [-1])
    assert run_together(InsertFrom(entry, source, {"balance_after": "balance"})) == [[]]
    assert entry.pk is None and entry._state.adding
    assert not LedgerEntry.objects.filter(idempotency_key="d:3").exists()


def test_only_a_reused_idempotency_key_counts_as_a_replay(user, db_pass):
    from generation.services import _key_taken

    run_together(new_job(user, idempotency_key="taken"))
    with pytest.raises(IntegrityError) as reused, transaction.atomic():
        run_together(new_job(user, idempotency_key="taken"))
    with pytest.raises(IntegrityError) as other_rule, transaction.atomic():
        run_together(new_job(user, idempotency_key="fresh", credits_charged=1, credits_refunded=2))
    assert _key_taken(reused.value)
    assert not _key_taken(other_rule.value)


def test_a_togethers_parts_each_get_their_rows_and_its_inserts_their_keys(user, db_pass):
    job = new_job(user)
    event = JobEvent(job=job, kind="created", data={"creditsCharged": 3})
    count = ("SELECT count(*) FROM generation_job WHERE user_id = %s", [user.pk])
    rows = run_together(Together(count, job, event))
    assert rows == [[(0,)], [(job.pk,)], [(event.pk,)]]
    assert not job._state.adding and not event._state.adding
    assert JobEvent.objects.get(pk=event.pk).job_id == job.pk
    assert stored(Job, job.pk)["params"] == job.params


def test_a_together_sees_the_statements_before_it(user, db_pass):
    Wallet.objects.update_or_create(user=user, defaults={"balance": 10})
    move = ("UPDATE billing_wallet SET balance = balance - 4 WHERE user_id = %s RETURNING balance", [user.pk])
    entry = LedgerEntry(user_id=user.pk, amount=-4, kind=EntryKind.DEBIT, balance_after=0, idempotency_key="d:4")
    source = ("FROM billing_wallet WHERE user_id = %s", [user.pk])
    count = ("SELECT count(*) FROM billing_ledgerentry WHERE user_id = %s", [user.pk])
    with transaction.atomic():
        rows = run_together(move, Together(count, InsertFrom(entry, source, {"balance_after": "balance"})))
    assert rows == [[(6,)], [(0,)], [(entry.pk, 6)]]
    assert LedgerEntry.objects.get(pk=entry.pk).balance_after == 6


def test_an_insert_from_in_a_together_that_finds_no_source_row_inserts_nothing(user, db_pass):
    entry = LedgerEntry(user_id=user.pk, amount=-1, kind=EntryKind.DEBIT, balance_after=0, idempotency_key="d:5")
    job = new_job(user)
    source = ("FROM billing_wallet WHERE user_id = %s", [-1])
    rows = run_together(Together(InsertFrom(entry, source, {"balance_after": "balance"}), job))
    assert rows == [[], [(job.pk,)]]
    assert entry.pk is None and entry._state.adding
    assert not LedgerEntry.objects.filter(idempotency_key="d:5").exists()


def test_a_unique_violation_in_a_together_leaves_none_of_its_rows(user, db_pass):
    run_together(new_job(user, idempotency_key="taken"))
    job = new_job(user, idempotency_key="taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        run_together(Together(JobEvent(job=new_job(user), kind="noise"), job, JobEvent(job=job, kind="created")))
    assert Job.objects.filter(idempotency_key="taken").count() == 1
    assert not JobEvent.objects.exists()


def test_no_part_of_a_together_sees_another_parts_insert_on_either_database(user, db_pass):
    job = new_job(user)
    count = ("SELECT count(*) FROM generation_job WHERE user_id = %s", [user.pk])
    rows = run_together(Together(job, count, JobEvent(job=job, kind="created"), count))
    assert rows[1] == rows[3] == [(0,)]  # one snapshot, as on PostgreSQL: the job is not there yet
    assert Job.objects.filter(user=user).count() == 1


def _wallet_move(user, amount: int) -> Lead:
    query = (
        "UPDATE billing_wallet SET balance = balance - %s WHERE user_id = %s AND balance >= %s RETURNING balance",
        [amount, user.pk, amount],
    )
    return Lead(query, ("balance",))


def test_a_lead_runs_first_and_its_inserts_take_their_columns_from_its_row(user, db_pass):
    Wallet.objects.update_or_create(user=user, defaults={"balance": 10})
    move = _wallet_move(user, 4)
    entry = LedgerEntry(user_id=user.pk, amount=-4, kind=EntryKind.DEBIT, balance_after=0, idempotency_key="d:6")
    job = new_job(user)
    balance = ("SELECT balance FROM billing_wallet WHERE user_id = %s", [user.pk])
    with transaction.atomic():
        rows = run_together(
            Together(move, balance, InsertFrom(entry, move, {"balance_after": "balance"}), InsertFrom(job, move))
        )
    assert rows == [[(6,)], [(10,)], [(entry.pk, 6)], [(job.pk,)]]  # the query saw the wallet before the lead
    assert LedgerEntry.objects.get(pk=entry.pk).balance_after == 6 and entry.balance_after == 6
    assert Job.objects.filter(pk=job.pk).exists() and Wallet.objects.get(user=user).balance == 6


def test_a_lead_that_changes_no_row_leaves_its_inserts_unwritten(user, db_pass):
    Wallet.objects.update_or_create(user=user, defaults={"balance": 3})
    move = _wallet_move(user, 4)
    entry = LedgerEntry(user_id=user.pk, amount=-4, kind=EntryKind.DEBIT, balance_after=0, idempotency_key="d:7")
    job, count = new_job(user), ("SELECT count(*) FROM generation_job WHERE user_id = %s", [user.pk])
    with transaction.atomic():
        rows = run_together(
            Together(move, InsertFrom(entry, move, {"balance_after": "balance"}), count, InsertFrom(job, move))
        )
    assert rows == [[], [], [(0,)], []]
    assert not LedgerEntry.objects.exists() and not Job.objects.exists()
    assert entry._state.adding and job._state.adding


def test_a_lead_comes_first_in_a_together_and_only_there(user, db_pass):
    move = _wallet_move(user, 1)
    with pytest.raises(TypeError):
        Together(new_job(user), move)
    with pytest.raises(TypeError), transaction.atomic():
        run_together(move)


def test_every_insert_in_a_together_with_a_lead_takes_its_row_from_that_lead(user, db_pass):
    move, other = _wallet_move(user, 1), _wallet_move(user, 2)
    with pytest.raises(TypeError):
        Together(move, new_job(user))  # inserted whether or not the lead changed its row
    with pytest.raises(TypeError):
        Together(move, InsertFrom(new_job(user), other))
    with pytest.raises(TypeError):
        Together(InsertFrom(new_job(user), move))


def test_a_row_holding_other_than_its_defaults_matches_what_save_writes(user, db_pass):
    changed = {
        "is_test": True,
        "progress": 0,  # not the default None, though falsy
        "cancel_requested": True,
        "credits_refunded": 3,
        "outputs": ["a.png"],
        "text": "hi",
        "usage": {"tokens": 1},
        "error": "e",
        "webhook_url": "https://example.com/hook",
        "attempts": 2,
        "status": JobStatus.RUNNING,
    }
    by_save, by_insert = new_job(user, **changed), new_job(user, idempotency_key="key-2", **changed)
    by_save.save(force_insert=True)
    run_together(by_insert)
    assert stored(Job, by_insert.pk) == stored(Job, by_save.pk)
    assert stored(Job, by_insert.pk)["progress"] == 0 and stored(Job, by_insert.pk)["outputs"] == ["a.png"]


@pytest.fixture
def fresh_statements():
    """The insert statements built anew: a test that changes a field's default changes them."""
    from flixly_site import db as flixly_db

    for cache in (flixly_db._constant_defaults, flixly_db._insert_sql):
        cache.cache_clear()
    yield
    for cache in (flixly_db._constant_defaults, flixly_db._insert_sql):
        cache.cache_clear()


def test_an_auto_now_field_is_stamped_as_save_stamps_it(user, db_pass, fresh_statements):
    from generation.models import WebhookEndpoint

    endpoint = WebhookEndpoint(user=user, url="https://example.com/hook", secret="whsec_a")
    run_together(endpoint)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).updated_at is not None


def test_a_constant_default_holding_a_percent_sign_is_stored_as_it_is(user, db_pass, fresh_statements, monkeypatch):
    kind = JobEvent._meta.get_field("kind")
    monkeypatch.setattr(kind, "default", "100% done")
    monkeypatch.setattr(kind, "_get_default", lambda: "100% done")  # Django caches the field's default maker
    job = new_job(user)
    run_together(job)
    event = JobEvent(job=job)  # its kind holds the default
    run_together(event)
    assert JobEvent.objects.get(pk=event.pk).kind == "100% done"
