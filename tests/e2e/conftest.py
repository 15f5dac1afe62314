import pytest
from allauth.account.models import EmailAddress

from generation.catalog import catalog_forget, catalog_sync

PASSWORD = "Quiet-Lake-4512"


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
