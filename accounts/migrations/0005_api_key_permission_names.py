"""Django names a permission once, when it creates it after a migrate: installs from before 0004 kept
"Can add api key" (the default verbose name) where new ones have "Can add API key", and the admin's group and
user pages list them by that name. Here the old names follow the models' current verbose names. A new
install has no permissions yet when this runs; Django then creates them with the current names."""

from django.db import migrations

ACTIONS = ("add", "change", "delete", "view")
MODELS = ("apikey", "apikeysecret")


def to_current_names(apps, schema_editor) -> None:
    permissions = apps.get_model("auth", "Permission").objects.using(schema_editor.connection.alias)
    for model in MODELS:
        verbose_name = apps.get_model("accounts", model)._meta.verbose_name
        for action in ACTIONS:
            permissions.filter(content_type__app_label="accounts", codename=f"{action}_{model}").update(
                name=f"Can {action} {verbose_name}"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_api_key_names"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    # Back to 0004 the models keep their current verbose names, so the current permission names stay right.
    operations = [migrations.RunPython(to_current_names, migrations.RunPython.noop)]
