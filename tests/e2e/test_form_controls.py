"""Native date and file inputs look like the pages' other fields, not like the browser's bare controls."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "var/test/screenshots"
LOOK = """e => { const s = getComputedStyle(e);
  return [s.borderTopColor, s.borderTopWidth, s.borderRadius, s.paddingLeft, s.backgroundColor, s.fontSize]; }"""


def test_the_export_forms_date_fields_look_like_the_filter_fields(signed_in, live_server, catalog):
    page = signed_in
    page.goto(f"{live_server.url}/jobs/")
    looks = {tuple(page.locator(selector).evaluate(LOOK)) for selector in ("#export-from", "#export-to", "#id_status")}
    assert len(looks) == 1, looks
    box = page.locator("#export-from").bounding_box()
    assert box["height"] == pytest.approx(page.locator("#id_status").bounding_box()["height"], abs=2)
    page.locator("form.filters").last.screenshot(path=f"{SCREENSHOTS}/jobs-export-dates.png")


def test_the_image_upload_looks_like_the_other_fields(signed_in, live_server, catalog):
    page = signed_in
    page.goto(f"{live_server.url}/generate/")
    page.get_by_label("Model").select_option("local-image-edit")
    upload, prompt = page.get_by_label("Input image"), page.locator("#id_prompt")
    border, width, radius, _, background, size = upload.evaluate(LOOK)
    assert (border, width, radius, background, size) == tuple(v for i, v in enumerate(prompt.evaluate(LOOK)) if i != 3)
    button = upload.evaluate("e => getComputedStyle(e, '::file-selector-button').backgroundColor")
    assert button == "rgb(238, 236, 255)"  # the accent's soft tint, as a ghost button, not the grey default
    page.locator('[data-field="image"]').screenshot(path=f"{SCREENSHOTS}/generate-upload.png")
