import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import httpx
import pytest

from accounts.models import Plan
from accounts.ratelimit import WAIT_SLOT_SECONDS, WINDOW_SECONDS, parallel_tasks_check, ratelimit_hit, wait_slot
from flixly_site.errors import RateLimited


def _within_one_window(margin: float = 15.0) -> None:
    """Wait until the clock's minute has `margin` seconds left: requests that straddle two fixed windows
    may pass twice the limit, as the documented algorithm allows (CI once saw 20 of 50 pass)."""
    while WINDOW_SECONDS - time.time() % WINDOW_SECONDS < margin:
        time.sleep(0.5)


def test_plans_have_the_contract_defaults(db):
    limits = {p.slug: (p.requests_per_minute, p.parallel_tasks) for p in Plan.objects.all()}
    assert limits == {"free": (10, 1), "lite": (30, 2), "pro": (60, 3), "pro-plus": (200, 25)}


def test_new_accounts_are_on_the_free_plan(user):
    assert user.plan.slug == "free"


def test_the_eleventh_request_in_a_minute_is_refused_with_retry_after(api):
    _within_one_window()
    statuses = [api.get("/api/v1/keys").status_code for _ in range(11)]
    assert statuses == [HTTPStatus.OK] * 10 + [HTTPStatus.TOO_MANY_REQUESTS]
    response = api.get("/api/v1/keys")
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["X-RateLimit-Remaining"] == "0"


def test_the_window_resets_on_the_next_minute():
    assert ratelimit_hit(bucket="t", limit=1, now=120.0).allowed is True
    assert ratelimit_hit(bucket="t", limit=1, now=150.0).allowed is False
    assert ratelimit_hit(bucket="t", limit=1, now=180.0).allowed is True


def test_the_reset_counts_seconds_to_the_window_end():
    assert ratelimit_hit(bucket="r", limit=5, now=125.5).reset == 55


def test_a_higher_plan_gets_a_higher_limit(api, user):
    user.plan = Plan.objects.get(slug="pro")
    user.save()
    assert api.get("/api/v1/keys")["X-RateLimit-Limit"] == "60"


def test_the_parallel_task_check_refuses_at_the_plan_limit():
    parallel_tasks_check(plan_limit=2, active=1)
    with pytest.raises(RateLimited) as refused:
        parallel_tasks_check(plan_limit=2, active=2)
    assert refused.value.status == HTTPStatus.TOO_MANY_REQUESTS
    assert refused.value.headers["Retry-After"]
    assert refused.value.message == (
        "Your plan runs 2 jobs at a time, and 2 are queued or running. Try again when one of them finishes."
    )


def test_the_parallel_task_refusal_reads_well_for_one_job():
    with pytest.raises(RateLimited) as refused:
        parallel_tasks_check(plan_limit=1, active=1)
    assert (
        refused.value.message
        == "Your plan runs 1 job at a time, and 1 is queued or running. Try again when it finishes."
    )


@pytest.mark.redis
def test_the_limiter_is_exact_on_real_redis_under_concurrency():
    barrier = threading.Barrier(50)

    def hit(_):
        barrier.wait()
        return ratelimit_hit(bucket="concurrent", limit=10, now=600.0).allowed

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(hit, range(50)))
    assert results.count(True) == 10


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_http_requests_at_limit_ten_let_exactly_ten_through(live_server, raw_key):
    barrier = threading.Barrier(50)
    _within_one_window()

    def call(_):
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            barrier.wait()
            return http.get("/api/v1/keys", headers={"Authorization": f"Bearer {raw_key}"}).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(call, range(50)))
    assert statuses.count(HTTPStatus.OK) == 10
    assert statuses.count(HTTPStatus.TOO_MANY_REQUESTS) == 40


def test_an_account_holds_at_most_its_limit_of_waiting_requests(db):
    one, other = f"a-{time.time_ns()}", f"b-{time.time_ns()}"
    first, second = wait_slot(bucket=one, limit=1), wait_slot(bucket=one, limit=1)
    assert first.taken and not second.taken
    assert wait_slot(bucket=other, limit=1).taken  # other accounts are apart
    first.release()
    second.release()  # a slot never taken gives nothing back
    third = wait_slot(bucket=one, limit=1)
    assert third.taken
    third.release()


def test_a_slot_its_holder_never_gave_back_frees_itself(db):
    bucket, now = f"lost-{time.time_ns()}", time.time()
    assert wait_slot(bucket=bucket, limit=1, now=now).taken
    assert not wait_slot(bucket=bucket, limit=1, now=now + WAIT_SLOT_SECONDS - 1).taken
    assert wait_slot(bucket=bucket, limit=1, now=now + WAIT_SLOT_SECONDS + 1).taken


@pytest.mark.redis
def test_wait_slots_are_exact_on_real_redis_under_concurrency():
    barrier = threading.Barrier(30)
    bucket = f"waits-concurrent-{time.time_ns()}"

    def take(_):
        barrier.wait()
        return wait_slot(bucket=bucket, limit=3)

    with ThreadPoolExecutor(max_workers=30) as pool:
        slots = list(pool.map(take, range(30)))
    assert sum(slot.taken for slot in slots) == 3
    for slot in slots:
        slot.release()
    again = wait_slot(bucket=bucket, limit=3)
    assert again.taken
    again.release()
