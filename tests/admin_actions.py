"""Driving the admin's list actions as a staff member's browser does."""

from django.test import Client


def offers_action(client: Client, page: str, action: str) -> bool:
    """Whether the admin page (a list, or an object's page) offers `action` to this client."""
    return f'value="{action}"' in client.get(page).content.decode()


def run_action(client: Client, changelist: str, action: str, *pks: object, **extra: str):
    """Post `action` on the objects `pks` from the list page `changelist`, as its form sends it."""
    return client.post(changelist, {"action": action, "_selected_action": list(pks), "index": 0, **extra})
