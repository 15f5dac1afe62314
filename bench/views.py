"""Reference endpoints for `make bench` (FLIXLY_BENCH_ENDPOINTS=true): the stack alone, and a submit's floor.

BareApi is DRF with nothing on top. MinimalSubmitApi is the least a submit can do on the same stack:
a key lookup in a dict, one Redis pipeline (rate limit), one transaction (conditional wallet UPDATE,
a ledger row, a job row) and one LPUSH. POST /api/v1/generate is compared with both.
"""

import functools
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.config import MINIMAL_QUEUE_KEY
from generation.catalog import catalog_get

ACCOUNTS_SQL = """
SELECT s.key_hash, k.user_id, k.id, p.requests_per_minute
FROM accounts_apikeysecret s
JOIN accounts_apikey k ON k.id = s.api_key_id
JOIN accounts_user u ON u.id = k.user_id
JOIN accounts_plan p ON p.slug = u.plan_id
WHERE k.revoked_at IS NULL
"""
DEBIT_SQL = "UPDATE billing_wallet SET balance = balance - %s WHERE user_id = %s AND balance >= %s RETURNING balance"
LEDGER_SQL = """
INSERT INTO billing_ledgerentry (public_id, user_id, amount, kind, balance_after, idempotency_key, reference_type,
    reference_id, category, api_key_id, reason, created_at)
VALUES (%s, %s, %s, 'debit', %s, %s, 'job', %s, 'images', %s, 'bench', %s)
"""
JOB_SQL = """
INSERT INTO generation_job (id, user_id, api_key_id, is_test, model_id, type, params, status, cancel_requested,
    route, credits_charged, credits_refunded, input_file, outputs, text, usage, metadata, error, error_detail,
    request_hash, attempts, created_at, enqueued_at)
VALUES (%s, %s, %s, false, %s, %s, %s::jsonb, 'queued', false, 'local', %s, 0, '', '[]', '', '{}', '{}', '', '',
    '', 0, %s, %s)
"""


class BareApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request: Request) -> Response:
        return Response({"data": {"ok": True}})


@dataclass(frozen=True)
class Account:
    user_id: int
    key_id: uuid.UUID
    requests_per_minute: int


_accounts: dict[str, Account] = {}  # key hash -> account, read from the database at first use and on a miss
_accounts_lock = threading.Lock()


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _load_accounts() -> None:
    with _accounts_lock, connection.cursor() as cursor:
        cursor.execute(ACCOUNTS_SQL)
        _accounts.update({row[0]: Account(row[1], row[2], row[3]) for row in cursor.fetchall()})


def _account(request: Request) -> Account | None:
    scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    key_hash = hmac.new(settings.FLIXLY_KEY_PEPPER.encode(), raw.strip().encode(), hashlib.sha256).hexdigest()
    if key_hash not in _accounts:
        _load_accounts()
    return _accounts.get(key_hash)


def _rate_allowed(account: Account) -> bool:
    key = f"rl:user:{account.user_id}:{int(time.time() // 60)}"
    pipe = _redis().pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, 61)
    count, _ = pipe.execute()
    return int(count) <= account.requests_per_minute


def _charge_and_create(account: Account, model_id: str, job_type: str, prompt: str, price: int) -> dict | None:
    job_id, now = uuid.uuid4(), timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(DEBIT_SQL, [price, account.user_id, price])
        row = cursor.fetchone()
        if row is None:
            return None
        ledger = [uuid.uuid4(), account.user_id, -price, row[0], f"debit:{job_id}", str(job_id), account.key_id, now]
        cursor.execute(LEDGER_SQL, ledger)
        params = json.dumps({"prompt": prompt})
        cursor.execute(JOB_SQL, [job_id, account.user_id, account.key_id, model_id, job_type, params, price, now, now])
    created = now.isoformat().replace("+00:00", "Z")
    return {"jobId": str(job_id), "status": "queued", "model": model_id, "type": job_type, "createdAt": created}


def _error(code: str, status: int, message: str) -> Response:
    return Response({"error": {"code": code, "status": status, "message": message}}, status=status)


class MinimalSubmitApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request: Request) -> Response:
        account = _account(request)
        if account is None:
            return _error("unauthorized", 401, "Unknown API key.")
        if not _rate_allowed(account):
            return _error("rate_limit_exceeded", 429, "Too many requests.")
        data = request.data if isinstance(request.data, dict) else {}
        model = catalog_get(str(data.get("model", "")))
        if model is None or data.get("type") not in model.types or not data.get("prompt"):
            return _error("validation_error", 422, "Send a known model, one of its types and a prompt.")
        job = _charge_and_create(account, model.id, data["type"], str(data["prompt"]), model.credits)
        if job is None:
            return _error("insufficient_credits", 402, f"You need at least {model.credits} credits.")
        _redis().lpush(MINIMAL_QUEUE_KEY, json.dumps({"jobId": job["jobId"]}))
        return Response({"data": {**job, "creditsCharged": model.credits}}, status=202)
