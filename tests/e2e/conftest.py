import re

import pytest
from allauth.account.models import EmailAddress

from generation.catalog import catalog_forget, catalog_sync

PASSWORD = "Quiet-Lake-4512"
RGB = re.compile(r"rgba?\((\d+), (\d+), (\d+)")


def luminance(css_colour: str) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(v)) for v in RGB.match(css_colour).groups())
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    """WCAG's contrast ratio of two computed CSS colours (rgb() or rgba(), alpha ignored)."""
    light, dark = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def log_in(page, live_server, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")


@pytest.fixture
def verified_user(django_user_model):
    def make(email: str):
        user = django_user_model.objects.create_user(email=email, password=PASSWORD)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    return make


@pytest.fixture
def signed_in(page, live_server, verified_user):
    """The browser page, logged in as a new verified user."""
    log_in(page, live_server, verified_user("someone@example.com").email)
    return page


@pytest.fixture
def catalog():
    """The full catalog loaded (a transactional test starts with an empty database)."""
    catalog_sync()
    yield
    catalog_forget()
