"""Groups and users are given permissions by name in the admin: an upgraded install names them as a new one does."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

ACTIONS = ("add", "change", "delete", "view")
BEFORE, AFTER = ("accounts", "0004_api_key_names"), ("accounts", "0005_api_key_permission_names")


def key_permission_names() -> dict[str, str]:
    permissions = Permission.objects.filter(content_type__app_label="accounts", codename__contains="apikey")
    return dict(permissions.values_list("codename", "name"))


def expected(model: str, verbose_name: str) -> dict[str, str]:
    return {f"{action}_{model}": f"Can {action} {verbose_name}" for action in ACTIONS}


CURRENT = expected("apikey", "API key") | expected("apikeysecret", "API key secret")


@pytest.mark.django_db
def test_a_new_install_names_the_key_permissions_as_the_console_names_keys():
    assert key_permission_names() == CURRENT


@pytest.mark.django_db(transaction=True)
def test_an_install_from_before_the_rename_gets_the_current_names():
    # Django names a permission once, when it creates it: installs from before 0004 kept "Can add api key".
    for codename, name in CURRENT.items():
        Permission.objects.filter(codename=codename).update(name=name.replace("API key", "api key"))
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    executor.loader.build_graph()
    executor.migrate([AFTER])
    assert key_permission_names() == CURRENT
