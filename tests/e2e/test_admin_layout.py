"""The staff console's busiest lists fit a 1280 px laptop screen with both of its sidebars open."""

import pytest

from generation.models import AiModel, Job, JobStatus
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "var/test/screenshots"
LAPTOP = {"width": 1280, "height": 800}
LONG_EMAIL = "alexandra.konstantinopoulou@verylongcompanyname-international.example.org"


@pytest.fixture
def staff_page(page, live_server, catalog, verified_user):
    """A superuser's browser page, with an account whose long address and jobs fill the lists."""
    staff = verified_user("staff@example.com")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    customer = verified_user(LONG_EMAIL)
    model = AiModel.objects.get(pk="nano-banana-pro")
    Job.objects.create(
        user=customer, model=model, type="IMAGE_TO_IMAGE", route=model.route, status=JobStatus.FAILED,
        credits_charged=250, credits_refunded=250,
    )  # fmt: skip
    log_in(page, live_server, staff.email)
    page.set_viewport_size(LAPTOP)
    return page


@pytest.mark.parametrize("name", ["user", "job", "aimodel"])
def test_the_list_shows_every_column_on_a_laptop_screen(staff_page, live_server, name):
    path = f"/admin/{'accounts' if name == 'user' else 'generation'}/{name}/"
    staff_page.goto(f"{live_server.url}{path}")
    staff_page.screenshot(path=f"{SCREENSHOTS}/admin-{name}-list.png")
    scroll_width, client_width = staff_page.locator(".results").evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scroll_width <= client_width, f"{path} is cut off on the right: {scroll_width} > {client_width} px"
    last_column = staff_page.locator("#result_list thead th").last.bounding_box()
    assert last_column["x"] + last_column["width"] <= LAPTOP["width"]
