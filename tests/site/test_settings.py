import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from flixly_site.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def test_env_bool_reads_common_words(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "off")
    assert env_bool("FLAG", True) is False


def test_env_bool_refuses_a_typo(monkeypatch):
    monkeypatch.setenv("FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG", False)


def test_env_int_refuses_text_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="NUM"):
        env_int("NUM", 1)
    monkeypatch.setenv("NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("NUM", 5, minimum=1)


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "FLIXLY_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k2$Rf9!aQw7@Lm4#Zp8^Tx6&Vb3*Nc5(Hy1)Jd0-Ge+Us=Oi_Ar[Es]Wq{Ty}",
    "FLIXLY_KEY_PEPPER": "p3pp3r" * 8,
    "ALLOWED_HOSTS": "flixly.example.com",
    "DATABASE_URL": "postgresql://flixly@127.0.0.1:5432/flixly",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_URL": "submission://mailer:secret@smtp.example.com:587",
    "DEFAULT_FROM_EMAIL": "Flixly <hello@flixly.example.com>",
    "FLIXLY_VAR_DIR": "var/test-deploy",
}


def test_check_deploy_is_clean_with_production_variables():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_without_a_secret_key_fails_loudly():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_a_bad_boolean_stops_startup_with_its_name():
    result = run_manage("check", env={"DJANGO_DEBUG": "maybe", "FLIXLY_VAR_DIR": "var/test-deploy"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG" in result.stderr


def _database_options(**extra: str) -> str:
    code = "from django.conf import settings; print(sorted(settings.DATABASES['default']['OPTIONS'].items()))"
    result = run_manage("shell", "-c", code, env={**PRODUCTION_ENV, **extra})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_postgresql_prepares_statements_run_often_unless_turned_off_for_a_pooler():
    assert "('prepare_threshold', 5)" in _database_options()
    assert "prepare_threshold" not in _database_options(DATABASE_PREPARED_STATEMENTS="false")
    assert "('server_side_binding', True)" in _database_options(DATABASE_PREPARED_STATEMENTS="false")


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_postgresql_connection_prepares_a_statement_after_five_runs():
    from django.db import connection

    with connection.cursor() as cursor:
        for _ in range(6):
            cursor.execute("SELECT %s::int + 1", [41])
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["SELECT $1::int + 1%"])
        assert cursor.fetchone()[0] == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "bogus"),
        ("CELERY_BROKER_URL", "127.0.0.1:6379"),
        ("DATABASE_URL", "nonsense"),
        ("EMAIL_URL", "bogus"),
        ("FLIXLY_EXTRA_PROVIDERS", "{bad"),
        ("FLIXLY_EXTRA_PROVIDERS", '["a.B"]'),
        ("FLIXLY_LOG_LEVEL", "LOUD"),
        ("FLIXLY_SITE_URL", "notaurl"),
        ("CELERY_TASK_TIME_LIMIT", "10"),
        ("FLIXLY_WORKER_HEARTBEAT", "0"),
        ("FLIXLY_WORKER_LOST_AFTER", "45"),
    ],
)
def test_a_bad_setting_stops_startup_naming_it(name, value):
    result = run_manage("check", env={name: value, "FLIXLY_VAR_DIR": "var/test-deploy"})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name} " in result.stderr, result.stderr[-600:]


def test_an_extra_provider_that_cannot_be_imported_fails_the_checks_naming_it():
    result = run_manage(
        "check", env={"FLIXLY_EXTRA_PROVIDERS": '{"x": "no.such.Provider"}', "FLIXLY_VAR_DIR": "var/test-deploy"}
    )
    assert result.returncode != 0
    assert "FLIXLY_EXTRA_PROVIDERS" in result.stderr and "no.such.Provider" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CELERY_BROKER_URL", "filesystem://"),
        ("CELERY_BROKER_URL", "memory://"),
        ("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        ("EMAIL_URL", "console://"),
        ("EMAIL_URL", "dummy://"),
        ("DATABASE_URL", "sqlite:///var/test-deploy/db.sqlite3"),
        ("REDIS_URL", "unix:///run/redis.sock"),
    ],
)
def test_every_scheme_a_url_setting_takes_starts_up_in_its_usual_form(name, value):
    result = run_manage("check", env={name: value, "FLIXLY_VAR_DIR": "var/test-deploy"})
    assert "ImproperlyConfigured" not in result.stderr, result.stderr[-600:]


def _settings(names: list[str], **extra: str) -> dict:
    code = f"from django.conf import settings; print({{n: getattr(settings, n) for n in {names!r}}})"
    result = run_manage("shell", "-c", code, env={**PRODUCTION_ENV, **extra})
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.splitlines()[-1])  # noqa: S307 (our own print of plain values)


TLS_SETTINGS = [
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "ACCOUNT_DEFAULT_HTTP_PROTOCOL",
]


def test_production_is_tls_only_and_leaves_hsts_preloading_to_the_operator():
    assert _settings(TLS_SETTINGS) == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_PRELOAD": False,  # a commitment for the whole domain: opted into, never by default
        "ACCOUNT_DEFAULT_HTTP_PROTOCOL": "https",
    }
    assert _settings(["SECURE_HSTS_PRELOAD"], SECURE_HSTS_PRELOAD="true") == {"SECURE_HSTS_PRELOAD": True}


def test_a_plain_http_site_url_runs_a_trial_without_tls_and_check_deploy_says_so():
    trial = {"FLIXLY_SITE_URL": "http://flixly.example.com:8000"}
    assert _settings(TLS_SETTINGS, **trial) == {
        "SESSION_COOKIE_SECURE": False,  # else no browser would send the session back over http
        "CSRF_COOKIE_SECURE": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_PRELOAD": False,
        "ACCOUNT_DEFAULT_HTTP_PROTOCOL": "http",  # the links in sign-up and reset e-mails
    }
    result = run_manage("check", "--deploy", env={**PRODUCTION_ENV, **trial})
    assert "security.W012" in result.stderr and "security.W004" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"FLIXLY_OUTBOUND_ALLOW_PRIVATE": "true"}, "FLIXLY_OUTBOUND_ALLOW_PRIVATE"),
        ({"FLIXLY_OUTBOUND_ALLOW_HTTP": "true"}, "FLIXLY_OUTBOUND_ALLOW_HTTP"),
        ({"EMAIL_URL": ""}, "EMAIL_URL"),
        ({"DEFAULT_FROM_EMAIL": ""}, "DEFAULT_FROM_EMAIL"),  # the default's domain is no one's
        ({"REDIS_URL": ""}, "REDIS_URL"),  # else each process keeps its own rate and login limits
    ],
)
def test_check_deploy_warns_of_development_settings_left_on(extra, named):
    env = {k: v for k, v in {**PRODUCTION_ENV, **extra}.items() if v}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0 and named in result.stderr, result.stderr
