import os
import shutil

import pytest
from django.core.cache import cache
from django.db import connection

# Playwright's sync API runs an event loop in the test thread; the ORM calls in those tests are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        return "needs PostgreSQL: run with DATABASE_URL (make test uses TEST_DATABASE_URL)"
    if item.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        return "needs Redis: run with REDIS_URL (make test uses TEST_REDIS_URL)"
    if item.get_closest_marker("browser") and not os.path.exists(CHROMIUM):
        return f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
    if item.get_closest_marker("espeak") and not shutil.which("espeak-ng"):
        return "needs espeak-ng (apt-get install espeak-ng)"
    if item.get_closest_marker("openssl") and not shutil.which("openssl"):
        return "needs the openssl command (apt-get install openssl)"
    if item.get_closest_marker("worker") and not shutil.which("celery", path=os.path.dirname(os.sys.executable)):
        return "needs the celery command in the virtualenv"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing(item)
    if reason is None:
        return
    # Under CI a missing service or tool is a failure, never a quiet skip.
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _enforced_content_policy(settings):
    """Tests run as production does (pytest-django turns DEBUG off), so the policy blocks, not just reports."""
    settings.SECURE_CSP, settings.SECURE_CSP_REPORT_ONLY = settings.CONTENT_POLICY, {}


@pytest.fixture(autouse=True)
def _eager_celery(request):
    """Tasks run inline unless a test starts a real worker (marked `worker`)."""
    from flixly_site.celery import app

    if request.node.get_closest_marker("worker"):
        yield
        return
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def stripe_fake(settings):
    from tests.fakes import FakeStripe

    with FakeStripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
        settings.STRIPE_API_BASE = fake.base_url
        # As settings.py does for STRIPE_API_BASE: Checkout's redirect after the buy form leads to the fake.
        settings.SECURE_CSP = {
            **settings.SECURE_CSP,
            "form-action": [*settings.SECURE_CSP["form-action"], fake.base_url],
        }
        yield fake


@pytest.fixture(autouse=True)
def _clean_cache():
    from accounts.selectors import apikey_drop_cached

    cache.clear()
    apikey_drop_cached()
    yield
    cache.clear()
    apikey_drop_cached()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(email="ada@example.com", password="correct horse battery")


@pytest.fixture
def make_key():
    from accounts.services import apikey_create

    def make(user, **kwargs) -> str:
        kwargs.setdefault("name", "test key")
        return apikey_create(user=user, **kwargs).raw

    return make


@pytest.fixture
def raw_key(user, make_key) -> str:
    """A live key with every scope for `user`."""
    from accounts.models import Scope

    return make_key(user, scopes=list(Scope.values))


@pytest.fixture
def api(client, raw_key):
    """The Django test client sending `raw_key` as a Bearer token."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
    return client


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        email="staff@example.com", password="correct horse battery", is_staff=True
    )


@pytest.fixture
def admin_client(client, staff_user):
    """The Django test client logged in as a superuser (pytest-django's own needs a username field)."""
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    """Log the test client in as a staff member holding only the given permissions ("app.codename")."""
    from django.contrib.auth.models import Permission

    def log_in(*permissions: str):
        for permission in permissions:
            app_label, codename = permission.split(".")
            staff_user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        client.force_login(staff_user)
        return client

    return log_in


@pytest.fixture
def page(page):
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def receiver(settings):
    """A loopback webhook endpoint; the SSRF guard lets tests reach it over plain http."""
    from tests.fakes import FakeWebhookReceiver

    settings.FLIXLY_OUTBOUND_ALLOW_HTTP = True
    settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE = True
    with FakeWebhookReceiver() as fake:
        yield fake


@pytest.fixture
def big_tables(monkeypatch):
    """The admin's big lists take a table's size from the planner's statistics, as they do past a
    threshold; call it with the tables to refresh their statistics, as autovacuum does."""
    from tests.admin_lists import analyze

    monkeypatch.setattr("flixly_site.admin_lists.ESTIMATE_FROM", 1)
    return analyze
