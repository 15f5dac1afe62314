import pytest

from billing.services import wallet_adjust
from generation.catalog import catalog_forget, catalog_sync
from generation.models import AiModel
from generation.providers.base import GenerationResult, Provider
from generation.queue import broker_forget


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Load the catalog once into the test database; transactional tests that flush it reload it below."""
    with django_db_blocker.unblock():
        catalog_sync()


@pytest.fixture(autouse=True)
def catalog(request):
    """Every database test here starts with the full catalog loaded."""
    if {"db", "transactional_db"} & set(request.fixturenames) or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("transactional_db" if "transactional_db" in request.fixturenames else "db")
        if not AiModel.objects.filter(id="local-image").exists():
            catalog_sync()
    catalog_forget()
    yield
    catalog_forget()


@pytest.fixture
def funded(user):
    wallet_adjust(user_id=user.pk, amount=100, reason="test funds")
    return user


@pytest.fixture
def no_worker(settings):
    """Jobs stay queued: tasks go to an in-memory broker nobody consumes."""
    from flixly_site.celery import app

    # Celery reads CELERY_BROKER_URL from Django settings live; the settings fixture restores it.
    settings.CELERY_BROKER_URL = "memory://"
    app.conf.task_always_eager = False
    reset_broker_connections(app)
    yield
    app.conf.task_always_eager = True
    reset_broker_connections(app)


def reset_broker_connections(app) -> None:
    """Drop pooled broker connections so a changed broker_url takes effect."""
    broker_forget()
    app._pool = None
    app.amqp._producer_pool = None


def generate(client, body: dict | None = None, **headers):
    payload = {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "A cat wearing a top hat", **(body or {})}
    return client.post("/api/v1/generate", payload, content_type="application/json", headers=headers)


class ScriptedProvider(Provider):
    """Fails or succeeds as the test says, counting calls."""

    script: list = []
    calls = 0

    def run(self, request, progress, deadline):
        type(self).calls += 1
        step = self.script.pop(0) if self.script else "ok"
        progress(50)
        if isinstance(step, Exception):
            raise step
        return GenerationResult(text="done")


@pytest.fixture
def scripted(settings):
    settings.FLIXLY_EXTRA_PROVIDERS = {"scripted": "tests.generation.conftest.ScriptedProvider"}
    AiModel.objects.create(
        id="scripted-chat", name="Scripted", types=["CHAT"], credits=5, route="scripted", upstream_model="s"
    )
    catalog_forget()
    ScriptedProvider.script, ScriptedProvider.calls = [], 0
    return ScriptedProvider
