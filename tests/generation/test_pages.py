"""The dashboard's Generate, Jobs and job pages: server-rendered over the same services as the API."""

import csv
import io
import re
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.messages import get_messages
from django.db import transaction
from django.test import Client
from django.utils import timezone
from PIL import Image

from billing.models import EntryKind, LedgerEntry
from billing.services import debit_prepare, wallet_balance
from generation.forms import GenerateForm
from generation.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, funded):
    client.force_login(funded)
    return client


def post_generate(client, **fields):
    body = {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "A lighthouse at dusk", **fields}
    return client.post("/generate/", body)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def queued_job(user, *, credits: int = 5) -> Job:
    with transaction.atomic():
        job = Job.objects.create(
            user=user,
            model_id="local-image",
            type="TEXT_TO_IMAGE",
            params={"prompt": "x"},
            route="local",
            credits_charged=credits,
        )
        debit_prepare(
            user_id=user.pk, amount=credits, idempotency_key=f"debit:{job.id}", reference_id=str(job.id)
        ).run()
    return job


def detail_links(response) -> set[str]:
    return set(re.findall(r'href="/jobs/([0-9a-f-]{36})/"', response.content.decode()))


# Generate


def test_the_playground_lists_the_models_grouped_by_kind_with_their_credits(signed_in):
    response = signed_in.get("/generate/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert '<optgroup label="Images">' in html and '<optgroup label="Speech">' in html
    assert "Flixly Local Image · 1 to 2 credits<" in html  # by size
    assert "Kokoro 82M · from 1 credit<" in html  # by length, from one credit
    assert 'id="catalog-data"' in html
    assert '<a href="/generate/" aria-current="page">' in html


def test_each_model_shows_its_price_range_and_whether_it_runs_here(signed_in, settings):
    settings.FLIXLY_LOCAL_FALLBACK = True  # no upstream is configured in tests: hosted models fall back
    response = signed_in.get("/generate/")
    assert "Veo 3.1 · 10 to 38 credits<" in response.content.decode()
    catalog = response.context["catalog"]["models"]
    assert catalog["veo-3.1"]["standIn"] is True and catalog["local-image"]["standIn"] is False
    settings.FLIXLY_LOCAL_FALLBACK = False
    assert "Veo 3.1 · 10 to 38 credits (unavailable)<" in signed_in.get("/generate/").content.decode()


@pytest.fixture
def only_local_models(settings):
    """Production without upstream keys: only the local-* models run here."""
    settings.FLIXLY_LOCAL_FALLBACK = False
    settings.FAL_KEY = settings.REPLICATE_API_TOKEN = settings.OPENAI_BASE_URL = ""


def test_the_picker_preselects_a_model_that_runs_here(signed_in, only_local_models):
    response = signed_in.get("/generate/")
    assert response.context["form"]["model"].value() == "local-image"
    assert '<option value="local-image" selected>' in response.content.decode()


def test_the_picker_lists_the_models_that_run_here_first_in_each_group(signed_in, only_local_models):
    groups = signed_in.get("/generate/").context["form"].fields["model"].choices
    for group, choices in groups:
        unavailable = [label.endswith("(unavailable)") for _, label in choices]
        assert unavailable == sorted(unavailable), group  # every False before every True
    images = dict(groups)["Images"]
    assert [model_id for model_id, _ in images[:2]] == ["local-image", "local-image-edit"]
    assert images[-1][1].endswith("(unavailable)")  # still listed, still marked


def test_a_model_asked_for_in_the_address_stays_chosen_even_if_unavailable(signed_in, only_local_models):
    response = signed_in.get("/generate/?model=flux-schnell")
    assert response.context["form"]["model"].value() == "flux-schnell"


def test_one_submit_shows_every_problem_at_once(signed_in):
    response = post_generate(signed_in, prompt="", width=-5)
    errors = response.context["form"].errors
    assert "prompt" in errors  # the form's own check
    assert "width" in errors  # the catalog's range, shown on the same submit
    assert not Job.objects.exists()


def test_the_playground_shows_the_balance(signed_in):
    response = signed_in.get("/generate/")

    assert re.search(r'id="balance">\s*100\s*<', response.content.decode())


def test_the_playground_says_a_cancel_refunds_until_the_job_finishes(signed_in):
    # It said "before it runs", but a running job canceled is refunded in full too when it stops
    # (generation.services.job_cancel_finish); only one that finishes before its next step is charged.
    html = signed_in.get("/generate/").content.decode()
    assert "before it runs" not in html
    assert (
        "If a job fails, or you cancel it before it finishes, you get them all back: a running job stops at its"
        " next step, and one that finishes first is charged." in html
    )


def prompt_placeholder(response) -> str:
    return re.search(r'<textarea name="prompt"[^>]*placeholder="([^"]*)"', response.content.decode()).group(1)


@pytest.mark.parametrize(
    ("job_type", "placeholder"),
    [
        ("TEXT_TO_IMAGE", "A lighthouse on a cliff at dusk, watercolor"),
        ("TEXT_TO_SPEECH", "Welcome to Flixly. Your video is ready to download."),
        ("TEXT_TO_MUSIC", "A calm piano melody with soft strings, slow tempo"),
        ("CHAT", "Write a two-line poem about lighthouses."),
    ],
)
def test_the_prompt_placeholder_fits_the_kind_of_job(signed_in, job_type, placeholder):
    # Speech, music and chat were all offered "A lighthouse on a cliff at dusk, watercolor".
    assert prompt_placeholder(signed_in.get("/generate/", {"type": job_type})) == placeholder


def test_a_refused_form_keeps_the_placeholder_of_its_kind_of_job(signed_in):
    response = post_generate(signed_in, model="local-speech", type="TEXT_TO_SPEECH", prompt="")
    assert prompt_placeholder(response) == "Welcome to Flixly. Your video is ready to download."


def test_every_kind_of_job_has_its_own_placeholder_for_the_pages_script(signed_in):
    placeholders = signed_in.get("/generate/").context["catalog"]["placeholders"]
    assert set(placeholders) == {job_type for job_type, _ in GenerateForm.base_fields["type"].choices}
    assert len(set(placeholders.values())) == len(placeholders)


def test_a_duration_of_a_few_fixed_values_is_a_choice_of_them(signed_in):
    # Sora 2 Pro takes 4, 8 or 12 seconds, but the page offered a free number field.
    html = signed_in.get("/generate/", {"model": "sora-2-pro"}).content.decode()
    select = re.search(r'<select name="duration"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(1))
    assert options == [("", "Model default (4)"), ("4", "4"), ("8", "8"), ("12", "12")]


def test_a_duration_over_a_range_is_a_whole_number_field(signed_in):
    html = signed_in.get("/generate/", {"model": "local-video"}).content.decode()
    assert re.search(r'<input type="number" name="duration"[^>]*step="1"', html)


def test_a_duration_chosen_from_the_list_reaches_the_job(signed_in, funded, settings):
    settings.FLIXLY_LOCAL_FALLBACK = True  # no upstream is configured in tests: Sora runs on the local engine
    post_generate(signed_in, model="sora-2-pro", type="TEXT_TO_VIDEO", prompt="Waves", duration="8")
    assert Job.objects.get(user=funded).params["duration"] == 8


@pytest.mark.parametrize(("model", "price"), [("local-image", 1), ("flux-dev", 3)])
def test_generating_charges_credits_and_opens_the_job_page_with_the_image(signed_in, funded, model, price):
    response = post_generate(signed_in, model=model, width="256", height="256")

    job = Job.objects.get(user=funded)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/jobs/{job.id}/"
    assert (job.status, job.credits_charged, job.params["width"]) == (JobStatus.COMPLETED, price, 256)
    assert wallet_balance(user_id=funded.pk) == 100 - price
    page = signed_in.get(response["Location"])
    assert re.search(r'<img src="http[^"]+/outputs/[^"]+\.png"', page.content.decode())
    assert "Download" in page.content.decode()
    assert f'download="flixly-{job.id}-0.png"' in page.content.decode()  # not every file named 0.png


def test_a_finished_job_page_does_not_refresh_itself(signed_in):
    page = signed_in.get(post_generate(signed_in)["Location"])

    assert 'http-equiv="refresh"' not in page.content.decode()
    assert "Cancel job" not in page.content.decode()


def test_a_duration_outside_the_models_range_is_shown_by_the_field_and_nothing_is_charged(signed_in, funded):
    response = post_generate(signed_in, model="local-video", type="TEXT_TO_VIDEO", duration="60", prompt="Waves")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert re.search(r'id="id_duration_error"><li>Must be between 1 and 10 for', html)
    assert re.search(r'name="duration" value="60(\.0)?"[^>]*aria-invalid="true"', html)
    assert re.search(r">\s*Waves</textarea>", html)
    assert not Job.objects.exists()
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_setting_the_model_does_not_take_is_refused_by_that_field(signed_in):
    response = post_generate(signed_in, voice="f1")

    assert "local-image does not take voice." in response.content.decode()
    assert not Job.objects.exists()


def test_without_enough_credits_the_form_says_so_and_keeps_the_input(client, user):
    client.force_login(user)

    response = post_generate(client, prompt="A red fox in the snow")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "You need at least 1 credit for this; your balance is 0." in html
    assert re.search(r">\s*A red fox in the snow</textarea>", html)
    assert not Job.objects.exists()


def test_a_refused_submit_opens_at_a_focused_alert_that_says_why(client, user):
    # A screen reader heard nothing of the refusal: the focus stayed at the top of the page.
    client.force_login(user)
    html = post_generate(client, prompt="A red fox in the snow").content.decode()
    summary = re.search(r'<div class="message error error-summary" id="error-summary"([^>]*)>(.*?)</ul>', html, re.S)
    assert summary.group(1) == ' role="alert" tabindex="-1" autofocus'
    assert "<p>You need at least 1 credit for this; your balance is 0.</p>" in summary.group(2)
    assert "<li>" not in summary.group(2)  # no field to look at: site.css leaves out the empty list


def test_check_price_quotes_without_charging(signed_in, funded):
    response = post_generate(signed_in, model="local-image", width="2048", height="2048", intent="quote")

    assert re.search(r'id="price">\s*2\s*<', response.content.decode())
    assert not Job.objects.exists()
    assert wallet_balance(user_id=funded.pk) == 100


def test_a_refused_submit_still_shows_the_price_it_would_have_charged(signed_in, funded):
    post_generate(signed_in, model="local-image", width="2048", height="2048")  # 2 credits
    funded.wallet.__class__.objects.filter(user=funded).update(balance=1)

    response = post_generate(signed_in, model="local-image", width="2048", height="2048")

    page = response.content.decode()
    assert "You need at least 2 credits for this; your balance is 1." in page
    assert re.search(r'id="price">\s*2\s*<', page)
    assert "more than your balance" in page
    assert Job.objects.count() == 1


def quote_json(client, **fields):
    body = {"model": "local-image", "type": "TEXT_TO_IMAGE", "prompt": "A lighthouse", "intent": "quote", **fields}
    return client.post("/generate/", body, headers={"Accept": "application/json"})


def test_the_pages_live_price_is_json_and_spends_none_of_the_api_rate_limit(signed_in, funded):
    from accounts.ratelimit import account_bucket, ratelimit_peek

    for _ in range(funded.plan.requests_per_minute + 5):
        response = quote_json(signed_in, width="2048", height="2048")
        assert response.status_code == HTTPStatus.OK
    assert response.json() == {"data": {"creditsCharged": 2}}
    assert ratelimit_peek(bucket=account_bucket(funded.pk), limit=10).count == 0
    assert not Job.objects.exists() and wallet_balance(user_id=funded.pk) == 100


def test_the_live_price_names_each_field_that_keeps_it_from_a_price(signed_in):
    response = quote_json(signed_in, width="9000", seed="x")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    details = response.json()["error"]["details"]
    assert {"width", "seed"} <= set(details)
    # generate.js shows the first message alone, so each names its field as the page labels it.
    assert details["width"][0].startswith("Width (pixels): ")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (
            {"model": "local-speech", "type": "TEXT_TO_SPEECH", "speed": "5", "voice": "bogus", "language": "klingon"},
            ("id_speed_error", "id_voice_error", "id_language_error"),
        ),
        (
            {"model": "local-video", "type": "TEXT_TO_VIDEO", "duration": "99", "fps": "1000"},
            ("id_duration_error", "id_fps_error"),
        ),
    ],
)
def test_generate_names_every_bad_setting_on_one_submit(signed_in, fields, named):
    page = post_generate(signed_in, **fields).content.decode()
    assert all(f'id="{error}"' in page for error in named), [e for e in named if f'id="{e}"' not in page]
    assert not Job.objects.exists()


def test_an_uploaded_image_feeds_an_image_to_image_job(signed_in):
    upload = io.BytesIO(png_bytes())
    upload.name = "input.png"

    response = post_generate(signed_in, model="local-image-edit", type="IMAGE_TO_IMAGE", image=upload)

    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.id}/"
    assert job.input_file and job.status == JobStatus.COMPLETED


def test_an_upload_that_is_not_an_image_is_refused_by_the_field(signed_in):
    upload = io.BytesIO(b"not an image at all")
    upload.name = "notes.png"

    response = post_generate(signed_in, model="local-image-edit", type="IMAGE_TO_IMAGE", image=upload)

    assert "The file is not a readable image" in response.content.decode()
    assert not Job.objects.exists()


def test_an_upload_over_the_limit_is_refused_by_the_field(signed_in, settings):
    settings.FLIXLY_MAX_UPLOAD_BYTES = 100
    upload = io.BytesIO(png_bytes())
    upload.name = "input.png"

    response = post_generate(signed_in, model="local-image-edit", type="IMAGE_TO_IMAGE", image=upload)

    assert 'id="id_image_error"' in response.content.decode()
    assert not Job.objects.exists()


def test_image_to_image_without_an_image_asks_for_one(signed_in):
    response = post_generate(signed_in, model="local-image-edit", type="IMAGE_TO_IMAGE")

    assert 'id="id_image_error"' in response.content.decode()
    assert not Job.objects.exists()


def test_the_generate_form_is_csrf_protected(funded):
    client = Client(enforce_csrf_checks=True)
    client.force_login(funded)

    response = post_generate(client)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not Job.objects.exists()


def test_the_pages_need_a_login(client):
    assert client.get("/generate/").status_code == HTTPStatus.FOUND
    assert client.get("/jobs/").status_code == HTTPStatus.FOUND


# Job page


def test_a_chat_reply_is_shown_as_text(signed_in):
    response = post_generate(signed_in, model="local-chat", type="CHAT", prompt="Say hello")

    page = signed_in.get(response["Location"]).content.decode()
    assert re.search(r'<div class="chat-reply">.+</div>', page, re.S)
    assert "<pre" not in page  # it was a dark monospace code block


def test_a_video_job_page_has_a_player(signed_in):
    response = post_generate(
        signed_in, model="local-video", type="TEXT_TO_VIDEO", prompt="Waves", duration="1", resolution="480p"
    )

    page = signed_in.get(response["Location"]).content.decode()
    assert re.search(r'<video controls preload="metadata" src="http[^"]+\.mp4"', page)


def test_a_music_job_page_has_an_audio_player(signed_in):
    response = post_generate(signed_in, model="local-music", type="TEXT_TO_MUSIC", prompt="Calm piano", duration="5")

    page = signed_in.get(response["Location"]).content.decode()
    assert "<audio controls" in page


def test_another_accounts_job_is_not_found(signed_in, django_user_model):
    other = django_user_model.objects.create_user(email="bob@example.com", password="correct horse battery")
    job = Job.objects.create(user=other, model_id="local-image", type="TEXT_TO_IMAGE", route="local")

    assert signed_in.get(f"/jobs/{job.id}/").status_code == HTTPStatus.NOT_FOUND
    assert signed_in.post(f"/jobs/{job.id}/cancel/").status_code == HTTPStatus.NOT_FOUND


def test_a_queued_job_follows_itself_and_offers_cancel(signed_in, funded):
    job = queued_job(funded)

    html = signed_in.get(f"/jobs/{job.id}/").content.decode()

    assert 'src="/static/js/job-status.js"' in html  # in place: tests/e2e/test_job_page.py
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html  # reloads without JavaScript
    assert f'action="/jobs/{job.id}/cancel/"' in html


def test_a_running_job_being_stopped_says_so_and_offers_no_second_cancel(signed_in, funded):
    job = queued_job(funded)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)

    response = signed_in.post(f"/jobs/{job.id}/cancel/", follow=True)

    html = response.content.decode()
    assert "Stopping the job" in html  # the message
    assert re.search(r'id="job-status">\s*Stopping\s*<', html)
    assert f'action="/jobs/{job.id}/cancel/"' not in html


def test_canceling_a_queued_job_refunds_it(signed_in, funded):
    job = queued_job(funded, credits=5)
    assert wallet_balance(user_id=funded.pk) == 95

    response = signed_in.post(f"/jobs/{job.id}/cancel/", follow=True)

    job.refresh_from_db()
    assert (job.status, job.credits_refunded) == (JobStatus.CANCELED, 5)
    assert wallet_balance(user_id=funded.pk) == 100
    assert LedgerEntry.objects.filter(user=funded, kind=EntryKind.REFUND, amount=5).count() == 1
    assert "5 credits are back in your balance" in response.content.decode()


def test_a_job_submitted_while_no_worker_runs_stays_queued_and_cancels_with_a_refund(signed_in, funded, no_worker):
    location = post_generate(signed_in)["Location"]
    job = Job.objects.get()
    assert job.status == JobStatus.QUEUED

    signed_in.post(f"{location}cancel/")

    job.refresh_from_db()
    assert (job.status, job.credits_refunded) == (JobStatus.CANCELED, 1)
    assert wallet_balance(user_id=funded.pk) == 100


def test_reloading_the_cancel_address_goes_back_to_the_job_and_cancels_nothing(signed_in, funded):
    job = queued_job(funded)

    response = signed_in.get(f"/jobs/{job.id}/cancel/")

    assert (response.status_code, response["Location"]) == (HTTPStatus.FOUND, f"/jobs/{job.id}/")
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_cancel_answers_other_methods_with_405(signed_in, funded):
    job = queued_job(funded)

    assert signed_in.delete(f"/jobs/{job.id}/cancel/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_cancel_needs_the_csrf_token(funded):
    job = queued_job(funded)
    client = Client(enforce_csrf_checks=True)
    client.force_login(funded)

    assert client.post(f"/jobs/{job.id}/cancel/").status_code == HTTPStatus.FORBIDDEN
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


# Jobs list


def test_the_jobs_list_shows_the_users_jobs_newest_first(signed_in):
    first = post_generate(signed_in, prompt="first")["Location"]
    second = post_generate(signed_in, prompt="second")["Location"]

    html = signed_in.get("/jobs/").content.decode()

    assert html.index(second) < html.index(first)
    assert '<span class="badge completed">Completed</span>' in html
    assert 'action="/jobs/export/"' in html  # the CSV export form


def test_the_jobs_list_filters_by_status(signed_in, funded):
    post_generate(signed_in)
    completed = Job.objects.get()
    queued = queued_job(funded)

    response = signed_in.get("/jobs/", {"status": "queued"})

    assert detail_links(response) == {str(queued.id)}
    assert str(completed.id) not in response.content.decode()


def test_the_jobs_list_filters_by_type_and_model(signed_in):
    post_generate(signed_in)
    post_generate(signed_in, model="local-chat", type="CHAT", prompt="Hi")
    chat = Job.objects.get(type="CHAT")

    assert detail_links(signed_in.get("/jobs/", {"type": "CHAT"})) == {str(chat.id)}
    assert detail_links(signed_in.get("/jobs/", {"model": "local-chat"})) == {str(chat.id)}


def test_an_unknown_filter_value_is_ignored_with_a_note(signed_in):
    post_generate(signed_in)

    response = signed_in.get("/jobs/", {"status": "exploded"})

    assert response.status_code == HTTPStatus.OK
    assert len(detail_links(response)) == 1
    assert 'id="id_status_error"' in response.content.decode()


def test_the_same_generate_form_sent_twice_is_one_job_charged_once(signed_in, funded):
    before = wallet_balance(user_id=funded.pk)
    first = post_generate(signed_in, once="form-1")
    again = post_generate(signed_in, once="form-1")  # a double click, or two tabs racing
    assert Job.objects.count() == 1
    assert first["Location"] == again["Location"]
    assert wallet_balance(user_id=funded.pk) == before - Job.objects.get().credits_charged
    assert "already sent" in str(list(get_messages(again.wsgi_request))[-1])


def test_a_form_sent_again_with_other_settings_asks_for_a_reload(signed_in, funded):
    post_generate(signed_in, once="form-2")
    response = post_generate(signed_in, once="form-2", prompt="Something else entirely")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "Press Generate again to start a new one" in page
    assert Job.objects.count() == 1
    fresh = re.search(r'name="once" value="([^"]+)"', page).group(1)
    assert fresh != "form-2"  # so pressing Generate again makes the new job
    assert post_generate(signed_in, once=fresh, prompt="Something else entirely").status_code == HTTPStatus.FOUND
    assert Job.objects.count() == 2


def test_each_render_of_the_generate_form_has_its_own_token(signed_in):
    tokens = {
        re.search(r'name="once" value="([^"]+)"', signed_in.get("/generate/").content.decode()).group(1)
        for _ in range(2)
    }
    assert len(tokens) == 2


def test_jobs_of_a_model_staff_disabled_can_still_be_filtered(signed_in, funded):
    from generation.models import AiModel

    Job.objects.create(user=funded, model_id="local-image", type="TEXT_TO_IMAGE", route="local")
    AiModel.objects.filter(id="local-image").update(enabled=False)
    response = signed_in.get("/jobs/?model=local-image")
    assert 'id="id_model_error"' not in response.content.decode()
    assert len(detail_links(response)) == 1


def test_an_image_job_without_an_image_says_so_in_the_pages_words(signed_in, funded):
    response = post_generate(signed_in, model="local-image-edit", type="IMAGE_TO_IMAGE")
    page = response.content.decode()
    assert "This kind of job starts from an image: choose one." in page
    assert "imageUrl" not in page.split("<form", 1)[1].split("</form>", 1)[0]
    assert not Job.objects.exists()


def test_the_jobs_page_exports_the_chosen_dates(signed_in, funded):
    Job.objects.create(user=funded, model_id="local-image", type="TEXT_TO_IMAGE", route="local")
    page = signed_in.get("/jobs/").content.decode()
    assert 'action="/jobs/export/"' in page and 'name="from"' in page
    today = timezone.now().date()
    response = signed_in.get(f"/jobs/export/?from={today - timedelta(days=7)}&to={today}", follow=True)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2  # the header and the job


def test_the_jobs_page_exports_the_jobs_its_filters_show(signed_in, funded):
    shown = Job.objects.create(
        user=funded, model_id="local-image", type="TEXT_TO_IMAGE", route="local", status="failed"
    )
    Job.objects.create(user=funded, model_id="local-image", type="TEXT_TO_IMAGE", route="local")
    page = signed_in.get("/jobs/?status=failed").content.decode()
    export_form = page.split('action="/jobs/export/"', 1)[1].split("</form>", 1)[0]
    assert '<input type="hidden" name="status" value="failed">' in export_form
    assert "Exports the jobs that match the filters above" in export_form
    today = timezone.now().date()
    response = signed_in.get(f"/jobs/export/?from={today}&to={today}&status=failed", follow=True)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row[0] for row in rows[1:]] == [str(shown.pk)]


def test_a_refused_export_keeps_the_filters(signed_in):
    response = signed_in.get("/jobs/export/?from=2026-01-01&to=2026-06-01&type=CHAT", follow=True)
    assert response.redirect_chain[-1][0].startswith("/jobs/?")
    assert "type=CHAT" in response.redirect_chain[-1][0]


def test_the_jobs_list_shows_what_each_job_was_asked(signed_in, funded):
    Job.objects.create(
        user=funded, model_id="local-image", type="TEXT_TO_IMAGE", route="local", params={"prompt": "a red fox " * 20}
    )
    chat = {"messages": [{"role": "user", "content": "Tell me a <b>joke</b>"}]}
    Job.objects.create(user=funded, model_id="local-chat", type="CHAT", route="local", params=chat)
    page = signed_in.get("/jobs/").content.decode()
    shown = ("a red fox " * 8)[:79]
    assert f">{shown}…</span>" in page  # shortened on the page, whole when hovered
    assert "Tell me a &lt;b&gt;joke&lt;/b&gt;" in page


def test_an_export_window_the_api_refuses_comes_back_as_a_message(signed_in):
    response = signed_in.get("/jobs/export/?from=2026-01-01&to=2026-06-01", follow=True)
    assert response.redirect_chain[-1][0].startswith("/jobs/")
    page = response.content.decode()
    assert "at most 90 days" in page
    assert 'value="2026-01-01"' in page and 'value="2026-06-01"' in page  # the dates as typed, to correct


def test_export_dates_that_are_not_dates_fall_back_to_the_defaults(signed_in):
    page = signed_in.get("/jobs/?exportFrom=yesterday&exportTo=2026-02-30").content.decode()
    assert f'value="{timezone.now().date()}"' in page


def test_the_jobs_list_pages_25_at_a_time(signed_in, funded):
    for _ in range(30):
        Job.objects.create(user=funded, model_id="local-image", type="TEXT_TO_IMAGE", route="local")

    first = signed_in.get("/jobs/")
    older = re.search(r'href="\?([^"]*cursor=[^"]+)">Older', first.content.decode()).group(1)
    second = signed_in.get(f"/jobs/?{older.replace('&amp;', '&')}")

    assert len(detail_links(first)) == 25
    assert len(detail_links(second)) == 5
    assert not detail_links(first) & detail_links(second)
    assert 'href="?">Newest' in second.content.decode()  # the last page links back to the first


def test_a_broken_cursor_shows_the_newest_jobs(signed_in):
    post_generate(signed_in)

    response = signed_in.get("/jobs/", {"cursor": "garbage"})

    assert len(detail_links(response)) == 1
    assert "That page link no longer works" in response.content.decode()


def test_the_csv_link_reaches_the_api_with_the_session(signed_in):
    post_generate(signed_in)

    response = signed_in.get("/api/v1/jobs/export.csv")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")


def test_a_billing_link_to_a_job_opens_its_page(signed_in):
    location = post_generate(signed_in)["Location"]
    job_id = location.split("/")[2]

    response = signed_in.get("/jobs/", {"job": job_id})

    assert response["Location"] == location


@pytest.mark.parametrize(
    ("model", "job_type", "field", "value", "param", "expected"),
    [
        ("local-chat", "CHAT", "max_tokens", "5", "maxTokens", 5),
        ("local-video", "TEXT_TO_VIDEO", "fps", "24", "fps", 24),
        ("ideogram-v3", "TEXT_TO_IMAGE", "style", "DESIGN", "style", "DESIGN"),
    ],
)
def test_every_catalog_setting_can_be_set_from_the_page(
    signed_in, funded, model, job_type, field, value, param, expected
):
    # The catalog offered style, fps and maxTokens, but the page had no field for them.
    assert f'name="{field}"' in signed_in.get("/generate/").content.decode()
    post_generate(signed_in, model=model, type=job_type, prompt="a short test", **{field: value})
    assert Job.objects.get(user=funded).params[param] == expected
