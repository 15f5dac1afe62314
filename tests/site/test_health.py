import re
from http import HTTPStatus
from unittest import mock

import pytest
from django.contrib.staticfiles import finders
from django.db.utils import OperationalError

from flixly_site.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_health_is_ok_when_database_and_broker_answer(client):
    response = client.get("/api/v1/health")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"data": {"status": "ok", "database": "ok", "broker": "ok"}}


def test_health_is_503_in_the_error_shape_when_the_database_is_down(client):
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=OperationalError("down")):
        response = client.get("/api/v1/health")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    body = response.json()
    assert body["data"] == {"status": "unavailable", "database": "unavailable", "broker": "ok"}
    assert body["error"]["code"] == "service_unavailable"


@pytest.fixture
def unreachable_redis_broker(settings):
    # Port 9 (discard) on loopback refuses connections at once. Celery reads the Django setting
    # live, so the settings fixture also restores it; only the pooled connections need dropping.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    celery_app._pool = None
    yield
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_health_is_503_when_the_broker_is_down(client, unreachable_redis_broker):
    response = client.get("/api/v1/health")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["data"]["broker"] == "unavailable"


@pytest.mark.postgres
@pytest.mark.redis
def test_health_checks_real_postgres_and_redis(client, settings):
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    response = client.get("/api/v1/health")
    assert response.json()["data"] == {"status": "ok", "database": "ok", "broker": "ok"}


def test_the_api_docs_page_loads_redoc_from_this_server_not_a_cdn(client):
    page = client.get("/api/docs").content.decode()
    script = re.search(r'<script src="([^"]*redoc[^"]*)"', page).group(1)
    assert script.startswith("/static/")
    assert finders.find(script.removeprefix("/static/"))  # shipped with the app: served by WhiteNoise
    assert client.get("/api/v1/schema").status_code == 200


def test_the_api_docs_page_fetches_nothing_from_another_server(client):
    response = client.get("/api/docs")
    assert "googleapis" not in response.content.decode()
    assert all(type(name) is str for name in response.headers)  # wsgiref refuses a str subclass
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["img-src"] == "'self' data:"  # Redoc's CDN logo
    assert "/api/docs" not in client.get("/api/v1/schema").content.decode()


def test_the_developer_docs_page_has_a_plain_title_and_each_section_once(client):
    page = client.get("/docs/").content.decode()
    assert re.search(r"<title>Docs · Flixly</title>", page)
    assert page.count('id="webhooks"') == page.count('id="openai"') == 1
