import re

import pytest
from playwright.sync_api import expect

from billing.services import wallet_adjust
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "var/test/screenshots"
JOB_URL = re.compile(r".*/jobs/[0-9a-f-]{36}/$")


@pytest.fixture
def signed_in(page, live_server, verified_user, settings, catalog):
    settings.SITE_URL = live_server.url  # output links point at the live server
    user = verified_user("maker@example.com")
    wallet_adjust(user_id=user.pk, amount=25, reason="test funds")
    log_in(page, live_server, user.email)
    return page


def test_a_user_generates_an_image_and_finds_it_under_jobs(signed_in):
    page = signed_in
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Generate").click()
    page.wait_for_url("**/generate/")

    page.get_by_label("Model").select_option("local-image")
    page.get_by_label("Prompt:", exact=True).fill("A lighthouse on a cliff at dusk, watercolor")
    page.get_by_label("Width (pixels)").fill("512")
    page.get_by_label("Height (pixels)").fill("512")
    page.get_by_label("Height (pixels)").blur()
    assert page.get_by_label("Duration (seconds)").is_hidden()  # not a setting local-image takes
    expect(page.locator("#price-note")).to_contain_text("for this job")
    assert page.locator("#price").inner_text() == "1"
    page.screenshot(path=f"{SCREENSHOTS}/generate.png", full_page=True)

    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_url(JOB_URL)
    image = page.get_by_role("img", name=re.compile("Generated image"))
    image.wait_for()
    # Not wait_for_function: its polling evaluates a string, which the page's Content-Security-Policy refuses.
    expect(page.locator(".output img")).to_have_js_property("complete", True)
    assert page.evaluate("document.querySelector('.output img').naturalWidth") == 512
    assert page.locator("#job-status").inner_text() == "Completed"
    page.screenshot(path=f"{SCREENSHOTS}/job.png", full_page=True)
    job_path = page.url.removeprefix(page.url.split("/jobs/")[0])

    nav.get_by_role("link", name="Jobs").click()
    page.wait_for_url("**/jobs/")
    row = page.get_by_role("row").filter(has=page.locator(f'a[href="{job_path}"]'))
    assert row.get_by_text("Flixly Local Image").is_visible()
    assert row.locator(".badge.completed").is_visible()
    page.screenshot(path=f"{SCREENSHOTS}/jobs.png", full_page=True)


def test_a_hosted_model_that_runs_on_the_local_engine_here_says_so_before_paying(signed_in, live_server, settings):
    settings.FLIXLY_LOCAL_FALLBACK = True
    page = signed_in
    page.goto(f"{live_server.url}/generate/")
    page.get_by_label("Model").select_option("flux-dev")
    assert "runs on the built-in local engine" in page.locator("#model-description").inner_text()
    page.get_by_label("Model").select_option("local-image")
    assert "local engine (no upstream" not in page.locator("#model-description").inner_text()


def test_the_page_shows_each_models_own_settings(signed_in):
    page = signed_in
    page.goto(page.url.split("/dashboard")[0] + "/generate/")
    page.get_by_label("Model").select_option("local-chat")
    assert page.get_by_label("Longest reply (tokens)").is_visible()
    assert page.get_by_label("Width (pixels)").is_hidden() and page.get_by_label("Style").is_hidden()
    page.get_by_label("Model").select_option("ideogram-v3")
    assert page.get_by_label("Style").is_visible() and page.get_by_label("Longest reply (tokens)").is_hidden()
    styles = page.locator("#style-options option").evaluate_all("options => options.map(o => o.value)")
    assert styles == ["AUTO", "GENERAL", "REALISTIC", "DESIGN"]
    page.get_by_label("Model").select_option("local-video")
    assert page.get_by_label("Frames per second").is_visible()
    page.screenshot(path=f"{SCREENSHOTS}/generate-video-settings.png", full_page=True)


def test_the_prompt_placeholder_follows_the_kind_of_job(signed_in):
    page = signed_in
    page.goto(page.url.split("/dashboard")[0] + "/generate/")
    prompt = page.locator("#id_prompt")
    assert prompt.get_attribute("placeholder") == "A lighthouse on a cliff at dusk, watercolor"
    page.get_by_label("Model").select_option("local-chat")
    assert page.get_by_label("Your message:").get_attribute("placeholder") == "Write a two-line poem about lighthouses."
    page.get_by_label("Model").select_option("local-speech")
    assert prompt.get_attribute("placeholder") == "Welcome to Flixly. Your video is ready to download."
    page.get_by_label("Model").select_option("local-music")
    assert prompt.get_attribute("placeholder") == "A calm piano melody with soft strings, slow tempo"


def test_a_setting_of_a_few_fixed_values_is_a_choice_and_a_range_is_a_number(signed_in, settings):
    settings.FLIXLY_LOCAL_FALLBACK = True
    page = signed_in
    page.goto(page.url.split("/dashboard")[0] + "/generate/")
    page.get_by_label("Model").select_option("sora-2-pro")
    duration = page.get_by_label("Duration (seconds)")
    options = duration.locator("option").evaluate_all("options => options.map(o => [o.value, o.textContent])")
    assert options == [["", "Model default (4)"], ["4", "4"], ["8", "8"], ["12", "12"]]
    duration.select_option("8")
    page.screenshot(path=f"{SCREENSHOTS}/generate-duration-choice.png", full_page=True)
    page.get_by_label("Model").select_option("local-video")
    kind, low, high, step, value = duration.evaluate("e => [e.type, e.min, e.max, e.step, e.value]")
    assert (kind, low, high, step, value) == ("number", "1", "10", "1", "8")
    page.get_by_label("Model").select_option("sora-2")
    assert duration.evaluate("e => [e.tagName, e.value]") == ["SELECT", "8"]
    page.get_by_label("Model").select_option("sora-2-pro")  # from one list of values to another
    assert duration.evaluate("e => [e.tagName, e.value]") == ["SELECT", "8"]
    assert "From 1 to 10" not in page.locator("#id_duration_helptext").inner_text()


def test_on_a_phone_the_balance_and_price_come_before_the_generate_button(signed_in):
    # At 390 px they sat below the button: the price was out of sight when pressing Generate.
    page = signed_in
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(page.url.split("/dashboard")[0] + "/generate/")
    button = page.get_by_role("button", name="Generate", exact=True).bounding_box()
    prompt = page.locator("#id_prompt").bounding_box()
    for card in ("#balance", "#price"):
        box = page.locator(card).bounding_box()
        assert prompt["y"] < box["y"] < button["y"], f"{card} is not between the form and the Generate button"
    page.screenshot(path=f"{SCREENSHOTS}/phone-generate-order.png", full_page=True)


def test_on_a_wide_screen_the_balance_and_price_stay_beside_the_form(signed_in):
    page = signed_in
    page.goto(page.url.split("/dashboard")[0] + "/generate/")
    form = page.locator("#generate-form").bounding_box()
    button = page.get_by_role("button", name="Generate", exact=True).bounding_box()
    assert button["x"] + button["width"] <= form["x"] + form["width"]
    for card in ("#balance", "#price"):
        assert page.locator(card).bounding_box()["x"] > form["x"] + form["width"]
    page.screenshot(path=f"{SCREENSHOTS}/generate-wide.png", full_page=True)


def test_a_chat_reply_reads_as_text_keeping_its_lines_and_wrapping_long_ones(signed_in, django_user_model):
    from generation.models import AiModel, Job

    model = AiModel.objects.get(pk="local-chat")
    reply = "First line of the reply.\nSecond line.\n" + "x" * 400
    job = Job.objects.create(
        user=django_user_model.objects.get(email="maker@example.com"), model=model, type="CHAT",
        params={"messages": [{"role": "user", "content": "Hi"}]}, status="completed", route=model.route, text=reply,
    )  # fmt: skip
    page = signed_in
    page.goto(page.url.split("/dashboard")[0] + f"/jobs/{job.pk}/")
    shown = page.locator(".chat-reply")
    font, background, text_colour = shown.evaluate(
        "e => [getComputedStyle(e).fontFamily, getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
    )
    body_font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert font == body_font and "monospace" not in font
    assert background == "rgba(0, 0, 0, 0)" and text_colour == "rgb(27, 29, 41)"  # the page's own text
    assert shown.inner_text().startswith("First line of the reply.\nSecond line.\n")
    assert shown.evaluate("e => e.scrollWidth <= e.clientWidth")  # the long line wraps
    page.locator("section", has=shown).screenshot(path=f"{SCREENSHOTS}/chat-reply.png")
