"""The dashboard's Settings -> Webhooks page: server-rendered over generation.webhooks, like the API Keys page."""

import re
from http import HTTPStatus

import pytest
from django.test import Client

from generation.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from generation.webhooks import endpoint_set, endpoint_test

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{43}=")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def endpoint(user, receiver) -> WebhookEndpoint:
    return endpoint_set(user=user, url=receiver.url)


def set_url(client, url: str, once: str = "w1"):
    return client.post("/settings/webhooks/", {"url": url, "once": once})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/settings/webhooks/"),
        ("post", "/settings/webhooks/"),
        ("post", "/settings/webhooks/test/"),
        ("get", "/settings/webhooks/remove/"),
        ("post", "/settings/webhooks/remove/"),
    ],
)
def test_the_webhook_pages_send_anonymous_visitors_to_log_in(client, method, path):
    response = getattr(client, method)(path)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/?next=")


def test_without_an_endpoint_the_page_explains_webhooks(signed_in):
    html = signed_in.get("/settings/webhooks/").content.decode()

    assert "No endpoint is set" in html
    for event in ("job.completed", "job.failed", "job.refunded", "key.rolled", "key.expiring", "credits.low"):
        assert f"<code>{event}</code>" in html
    assert "Standard Webhooks" in html
    assert "Send test event" not in html
    assert '<a href="/settings/webhooks/" aria-current="page">Webhooks</a>' in html


@pytest.mark.parametrize(
    ("debug", "allowed", "hinted"), [(True, False, True), (True, True, False), (False, False, False)]
)
def test_in_development_the_page_says_how_to_try_a_receiver_on_this_machine(
    signed_in, settings, debug, allowed, hinted
):
    settings.DEBUG = debug
    settings.FLIXLY_OUTBOUND_ALLOW_HTTP = settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = allowed
    html = signed_in.get("/settings/webhooks/").content.decode()
    assert ("FLIXLY_OUTBOUND_ALLOW_PRIVATE=true" in html) is hinted


def test_setting_a_url_shows_its_secret_once(signed_in, user, receiver):
    response = set_url(signed_in, receiver.url)

    secret = WebhookEndpoint.objects.get(user=user).secret
    assert response.status_code == HTTPStatus.OK
    assert SECRET.fullmatch(secret) and secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert "cannot be shown again" in response.content.decode()
    page = signed_in.get("/settings/webhooks/").content.decode()
    assert receiver.url in page and secret not in page


def test_a_set_form_sent_twice_issues_one_secret(signed_in, user, receiver):
    set_url(signed_in, receiver.url)
    secret = WebhookEndpoint.objects.get(user=user).secret

    again = set_url(signed_in, receiver.url, once="w1")  # the browser's reload of the POST

    assert again.status_code == HTTPStatus.FOUND
    assert WebhookEndpoint.objects.get(user=user).secret == secret
    assert "already sent" in signed_in.get(again["Location"]).content.decode()


def test_replacing_the_url_issues_a_new_secret(signed_in, user, endpoint, receiver):
    response = set_url(signed_in, receiver.url + "/v2")

    replaced = WebhookEndpoint.objects.get(user=user)
    assert (replaced.url, replaced.secret != endpoint.secret) == (receiver.url + "/v2", True)
    assert "Webhook endpoint replaced" in response.content.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [("http://93.184.215.14/hook", "The webhook URL must use https."), ("https://127.0.0.1/hook", "private address")],
)
def test_an_unsafe_url_is_refused_by_the_field_and_nothing_is_stored(signed_in, url, message):
    response = set_url(signed_in, url)

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert re.search(rf'id="id_url_error"><li>[^<]*{re.escape(message)}', html)
    assert re.search(r'name="url" value="[^"]+"[^>]*aria-invalid="true"', html)
    assert not WebhookEndpoint.objects.exists()


def test_a_test_event_that_is_accepted_shows_its_code_and_latency(signed_in, endpoint, receiver):
    response = signed_in.post("/settings/webhooks/test/", follow=True)

    html = response.content.decode()
    assert re.search(r"Test event delivered: HTTP 200 in \d+ ms\.", html)
    assert len(receiver.received("POST", "/hooks")) == 1
    assert '<span class="badge succeeded">Succeeded</span>' in html


def test_a_refused_test_event_shows_the_error_and_the_next_retry(signed_in, endpoint, receiver):
    receiver.status = 500

    html = signed_in.post("/settings/webhooks/test/", follow=True).content.decode()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    retry = f"{delivery.next_attempt_at:%Y-%m-%d %H:%M:%S}"
    assert re.search(rf"Test event not delivered yet \(HTTP 500 in \d+ ms\): HTTP 500\. Next try at {retry} UTC", html)


def test_a_test_event_the_ssrf_guard_refused_says_it_was_not_sent(signed_in, endpoint, receiver, settings):
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = False  # its DNS answer now points inside

    html = signed_in.post("/settings/webhooks/test/", follow=True).content.decode()

    refused = "Not sent: the webhook URL resolves to a private address, which is not allowed."
    assert f"Test event not delivered yet: {refused} Next try at" in html
    assert "no answer" not in html and receiver.posts() == []


def test_a_second_test_while_one_is_on_its_way_is_refused_with_a_message(signed_in, user, endpoint, receiver):
    from django.core.cache import cache

    cache.add(f"webhook-test:{user.pk}", 1, 30)
    html = signed_in.post("/settings/webhooks/test/", follow=True).content.decode()

    assert "A test event for your endpoint is still on its way" in html
    assert receiver.posts() == [] and not WebhookDelivery.objects.exists()


def test_a_test_event_without_an_endpoint_asks_for_a_url_first(signed_in):
    response = signed_in.post("/settings/webhooks/test/", follow=True)

    assert "Set an endpoint URL first" in response.content.decode()
    assert not WebhookDelivery.objects.exists()


def test_reloading_the_test_event_address_goes_back_to_the_page_and_sends_nothing(signed_in, endpoint, receiver):
    response = signed_in.get("/settings/webhooks/test/")

    assert (response.status_code, response["Location"]) == (HTTPStatus.FOUND, "/settings/webhooks/")
    assert receiver.posts() == [] and not WebhookDelivery.objects.exists()


def test_a_test_event_needs_the_csrf_token(user, endpoint, receiver):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    assert client.post("/settings/webhooks/test/").status_code == HTTPStatus.FORBIDDEN
    assert receiver.posts() == []


def test_removing_the_endpoint_asks_first_and_then_removes_it(signed_in, endpoint):
    confirm = signed_in.get("/settings/webhooks/remove/")
    assert "Remove the webhook endpoint?" in confirm.content.decode()
    assert WebhookEndpoint.objects.exists()

    removed = signed_in.post("/settings/webhooks/remove/", follow=True)

    assert not WebhookEndpoint.objects.exists()
    assert "Webhook endpoint removed" in removed.content.decode()


def test_removing_an_endpoint_already_gone_says_so(signed_in):
    response = signed_in.post("/settings/webhooks/remove/", follow=True)

    assert "nothing to remove" in response.content.decode()


def test_the_page_lists_the_20_newest_deliveries_of_this_account_only(signed_in, user, endpoint, receiver):
    other = type(user).objects.create_user(email="eve@example.com", password="another horse battery")
    endpoint_set(user=other, url=receiver.url + "/eve")
    endpoint_test(user=other)
    for _ in range(21):
        endpoint_test(user=user)

    response = signed_in.get("/settings/webhooks/")

    deliveries = list(response.context["deliveries"])
    assert len(deliveries) == 20 and {d.user_id for d in deliveries} == {user.pk}
    assert deliveries[0] == WebhookDelivery.objects.filter(user=user).first()
    assert "/eve" not in response.content.decode()


def test_setting_a_url_needs_the_csrf_token(user, receiver):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = set_url(client, receiver.url)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not WebhookEndpoint.objects.exists()


def test_reloading_a_refused_url_shows_the_refusal_again(signed_in, user):
    # The refused send had spent the form's token: the reload claimed the form "was already sent".
    first = set_url(signed_in, "http://93.184.215.14/hook", once="w9")
    again = set_url(signed_in, "http://93.184.215.14/hook", once="w9")
    assert first.status_code == again.status_code == HTTPStatus.OK
    assert "must use https" in again.content.decode()
    assert not WebhookEndpoint.objects.filter(user=user).exists()


def test_a_delivery_url_may_wrap_only_after_a_slash_or_before_its_query(signed_in, user):
    # break-all split "http://127.0.0.1:8905/hook" inside the port: "http://127.0.0.1:890 / 5/hook".
    url = "http://127.0.0.1:8905/hook?x=1&y=2"
    WebhookDelivery.objects.create(user=user, event="ping", url=url, body="{}", status=DeliveryStatus.SUCCEEDED)
    html = signed_in.get("/settings/webhooks/").content.decode()
    assert "<code>http://<wbr>127.0.0.1:8905/<wbr>hook<wbr>?x=1<wbr>&amp;y=2</code>" in html


def test_the_endpoint_url_wraps_at_the_same_places(signed_in, user):
    WebhookEndpoint.objects.create(user=user, url="https://hooks.example.com/flixly/events", secret="whsec_test")
    html = signed_in.get("/settings/webhooks/").content.decode()
    assert '<p class="endpoint-url"><code>https://<wbr>hooks.example.com/<wbr>flixly/<wbr>events</code>' in html
