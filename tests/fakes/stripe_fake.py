"""A Stripe API on loopback: Customers, Checkout Sessions, Customer Portal sessions, and a payment page.

The SDK posts form-encoded bodies (a[b][c]=v); the fake decodes them into nested dicts. Visiting a
session's url shows a page whose "Pay" button completes the session: the fake then delivers a signed
checkout.session.completed event to the app's webhook, like Stripe, and redirects to success_url.
"""

import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx

from .server import FakeServer, Recorded, Response, json_response


def stripe_signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's bracket notation (line_items[0][price]=x) into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for part, following in itertools.pairwise(parts):
            node = _child(node, part, [] if following.isdigit() else {})
        _child(node, parts[-1], value, replace=True)
    return root


def _child(node: Any, part: str, default: Any, *, replace: bool = False) -> Any:
    if isinstance(node, list):
        index = int(part)
        node.extend([None] * (index + 1 - len(node)))
        if replace or node[index] is None:
            node[index] = default
        return node[index]
    if replace:
        node[part] = default
    return node.setdefault(part, default)


class FakeStripe(FakeServer):
    def __init__(self, secret_key: str = "sk_test_fake", webhook_secret: str = "whsec_fake") -> None:
        super().__init__()
        self.expected_auth = f"Bearer {secret_key}"
        self.webhook_secret = webhook_secret
        self.webhook_url: str | None = None  # where "paying" delivers the event
        self.customers: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self._ids = itertools.count(1)

    def dispatch(self, request: Recorded) -> Response:
        if request.path.startswith("/pay/"):  # the hosted payment page needs no API key
            with self._lock:
                self.requests.append(request)
            return self._pay_page(request)
        return super().dispatch(request)

    def route(self, request: Recorded) -> Response:
        form = decode_form(request.body) if request.method == "POST" else {}
        if request.path == "/v1/customers" and request.method == "POST":
            return self._create_customer(form)
        if request.path.startswith("/v1/customers/") and request.method == "POST":
            return self._update_customer(request.path.removeprefix("/v1/customers/"), form)
        if request.path == "/v1/checkout/sessions" and request.method == "POST":
            return self._create_session(form)
        if request.path == "/v1/billing_portal/sessions" and request.method == "POST":
            url = f"{self.base_url}/portal/{form['customer']}"
            return json_response({"id": f"bps_{next(self._ids)}", "object": "billing_portal.session", "url": url})
        return json_response({"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}, 404)

    def _create_customer(self, form: dict) -> Response:
        customer = {"id": f"cus_{next(self._ids)}", "object": "customer", "email": form.get("email"), **form}
        self.customers[customer["id"]] = customer
        return json_response(customer)

    def _update_customer(self, customer_id: str, form: dict) -> Response:
        if customer_id not in self.customers:
            return json_response({"error": {"type": "invalid_request_error", "message": "No such customer"}}, 404)
        self.customers[customer_id].update(form)
        return json_response(self.customers[customer_id])

    def _create_session(self, form: dict) -> Response:
        session_id = f"cs_test_{next(self._ids)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": form.get("mode"),
            "customer": form.get("customer"),
            "client_reference_id": form.get("client_reference_id"),
            "metadata": form.get("metadata", {}),
            "line_items": form.get("line_items", []),
            "payment_status": "unpaid",
            "status": "open",
            "payment_intent": f"pi_{session_id}" if form.get("mode") == "payment" else None,
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
            "url": f"{self.base_url}/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return json_response(session)

    # --- the hosted payment page ----------------------------------------------------------------------
    def _pay_page(self, request: Recorded) -> Response:
        session = self.sessions.get(request.path.removeprefix("/pay/"))
        if session is None:
            return Response(404, b"no such session", "text/plain")
        if request.method == "GET":
            page = '<html><body><h1>Fake Stripe Checkout</h1><form method="post"><button>Pay</button></form>'
            return Response(200, page.encode(), "text/html")
        session.update(payment_status="paid", status="complete")
        self.deliver("checkout.session.completed", session)
        location = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
        return Response(303, b"", "text/plain", {"Location": location})

    def event(self, event_type: str, obj: dict, *, created: int | None = None, event_id: str | None = None) -> str:
        return json.dumps(
            {
                "id": event_id or f"evt_{next(self._ids)}",
                "object": "event",
                "type": event_type,
                "created": created or int(time.time()),
                "data": {"object": obj},
                "livemode": False,
                "api_version": "2025-09-30.clover",
            }
        )

    def deliver(self, event_type: str, obj: dict) -> httpx.Response:
        assert self.webhook_url, "set fake.webhook_url to the app's /billing/stripe/webhook/"
        payload = self.event(event_type, obj)
        headers = {"Stripe-Signature": stripe_signature_header(payload, self.webhook_secret)}
        return httpx.post(self.webhook_url, content=payload, headers=headers, timeout=10)
