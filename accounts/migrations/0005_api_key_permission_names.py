"""Django names a permission once, when it creates it after a migrate: installs from before 0004 kept
"Can add api key" (the default verbose name) where new ones have "Can add API key", and the admin's group and
user pages list them by that name. Here the old names follow the models' current verbose names. A new
install has no permissions yet when this runs; Django then creates them with the current names."""

from django.db import migrations

ACTIONS = ("add", "change", "delete", "view")
MODELS = ("apikey", "apikeysecret")
DEFAULT_NAMES = {"apikey": "api key", "apikeysecret": "api key secret"}  # Django's, from the class names


def _rename(apps, schema_editor, verbose_name) -> None:
    permissions = apps.get_model("auth", "Permission").objects.using(schema_editor.connection.alias)
    for model in MODELS:
        for action in ACTIONS:
            permissions.filter(content_type__app_label="accounts", codename=f"{action}_{model}").update(
                name=f"Can {action} {verbose_name(apps, model)}"
            )


def to_current_names(apps, schema_editor) -> None:
    _rename(apps, schema_editor, lambda apps, model: apps.get_model("accounts", model)._meta.verbose_name)


def to_default_names(apps, schema_editor) -> None:
    _rename(apps, schema_editor, lambda apps, model: DEFAULT_NAMES[model])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_api_key_names"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(to_current_names, to_default_names)]
