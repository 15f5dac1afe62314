"""Staff edit the catalog in the admin: a price or a range no request could meet is refused there, before it
can fail a submit (a negative tier price was a 500 on every matching request)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.admin.sites import site
from django.forms.models import model_to_dict
from django.test import RequestFactory
from django.utils import timezone

from generation.catalog import CATALOG_FILE, catalog_sync
from generation.models import MAX_JOB_SECONDS, AiModel
from generation.pricing import catalog_problems

pytestmark = pytest.mark.django_db


def admin_form(model: AiModel, **changes):
    request = RequestFactory().post("/admin/")
    data = {**model_to_dict(model), **changes}
    data = {name: json.dumps(value) if isinstance(value, dict | list) else value for name, value in data.items()}
    return site._registry[AiModel].get_form(request, model)(data=data, instance=model)


@pytest.mark.parametrize(
    "pricing",
    [
        {"bySize": {"4194304": -50}},
        {"bySize": {"big": 3}},
        {"bySize": {}},
        {"byDuration": {"5": 2.5}},
        {"byResolution": {"720p": {"5": True}}},
        {"byResolution": {"720p": 4}},
        {"perThousandChars": -1},
        {"perThousandChars": 10**12 + 1},  # more than one debit may take
        {"bySize": {"4194304": 10**12 + 1}},
        {"byColour": {"red": 1}},
        {"bySize": {"1": 1}, "byDuration": {"1": 1}},
        [1, 2],
    ],
)
def test_a_price_no_request_could_pay_is_refused_in_the_admin(pricing):
    form = admin_form(AiModel.objects.get(id="local-image"), pricing=pricing)
    assert not form.is_valid() and "pricing" in form.errors


@pytest.mark.parametrize(
    "params",
    [
        {"width": {"min": 5000, "max": 10}},
        {"width": {"min": "a", "max": 10}},
        {"style": {"allowed": []}},
        {"width": {"min": 256, "max": 1024, "default": 2048}},
        {"voice": {"allowed": ["a"], "default": "b"}},
        {"width": 512},
    ],
)
def test_a_range_no_request_could_meet_is_refused_in_the_admin(params):
    form = admin_form(AiModel.objects.get(id="local-image"), params=params)
    assert not form.is_valid() and "params" in form.errors


@pytest.mark.parametrize(
    "params",
    [
        {"duration": {"min": 1, "max": 20, "default": 6}, "resolution": {"allowed": ["480p", "720p"]}},
        {"duration": {"min": 1, "max": 15, "default": 6}, "resolution": {"allowed": ["480p", "1080p"]}},
        {"duration": {"allowed": ["6"], "default": "6"}, "resolution": {"allowed": ["720p"], "default": "720p"}},
    ],
)
def test_a_range_the_price_table_does_not_cover_is_refused(params):
    form = admin_form(AiModel.objects.get(id="grok-imagine-video"), params=params)
    assert not form.is_valid() and "No price for a request" in str(form.errors["pricing"])


@pytest.mark.parametrize("params", [{"steps": {"max": 8}}, {"seed": {"default": 7}}, {"steps": {"min": 1}}])
def test_a_range_with_one_bound_is_accepted(params):
    assert admin_form(AiModel.objects.get(id="local-image"), params=params).is_valid()


def test_the_admin_page_still_edits_every_field_and_saves_a_sound_change(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    model = AiModel.objects.get(id="local-image")
    page = client.get(f"/admin/generation/aimodel/{model.id}/change/").content.decode()
    assert all(f'name="{name}"' in page for name in ("name", "route", "upstream_model", "types", "pricing"))
    form = admin_form(model, pricing={"bySize": {"1048576": 2, "4194304": 0}}, credits=2)
    data = {name: form.data[name] for name in form.fields}
    response = client.post(f"/admin/generation/aimodel/{model.id}/change/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert AiModel.objects.get(id="local-image").pricing == {"bySize": {"1048576": 2, "4194304": 0}}


def test_every_catalog_entry_passes_the_same_checks():
    for model in AiModel.objects.all():
        assert catalog_problems(model) == {}, model.id


def test_credits_that_disagree_with_the_price_table_are_refused_with_the_table_price():
    # Credits is what the catalog shows; the table is what a job is charged: they may not drift apart.
    model = AiModel.objects.get(id="seedance-2.0")
    form = admin_form(model, credits=5)
    assert not form.is_valid()
    assert "12" in str(form.errors["credits"])
    assert admin_form(model, credits=12).is_valid()


def test_a_price_edited_in_the_model_list_goes_through_the_same_checks(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    model = AiModel.objects.get(id="seedance-2.0")
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": model.id,
        "form-0-enabled": "on",
        "form-0-credits": "5",
        "_save": "Save",
    }
    response = client.post(f"/admin/generation/aimodel/?q={model.id}", data)
    assert "charges 12 at the default settings" in response.content.decode()
    assert AiModel.objects.get(id=model.id).credits == 12


@pytest.mark.parametrize("types", [["TEXT_TO_BANANA"], [], "TEXT_TO_IMAGE", [1]])
def test_an_unknown_job_type_is_refused_in_the_admin(types):
    form = admin_form(AiModel.objects.get(id="local-music"), types=types)
    assert not form.is_valid() and "types" in form.errors


@pytest.mark.parametrize("seconds", [0, MAX_JOB_SECONDS + 1, 7200])
def test_a_time_limit_past_what_the_broker_allows_a_running_job_is_refused(seconds):
    # Redis hands an unacknowledged message out again after its visibility timeout: the job would run twice.
    form = admin_form(AiModel.objects.get(id="local-image"), timeout_seconds=seconds)
    assert not form.is_valid() and "timeout_seconds" in form.errors
    assert admin_form(AiModel.objects.get(id="local-image"), timeout_seconds=MAX_JOB_SECONDS).is_valid()


def test_every_catalog_time_limit_is_within_the_bounds():
    assert all(1 <= model.timeout_seconds <= MAX_JOB_SECONDS for model in AiModel.objects.all())


def test_a_model_id_cannot_be_changed_once_made(client, staff_user):
    # A changed primary key saved a second model beside the first.
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    page = client.get("/admin/generation/aimodel/ace-step/change/").content.decode()
    assert 'name="id"' not in page


def test_staff_cannot_delete_a_job_its_ledger_rows_point_to(client, staff_user):
    # A deleted job left the customer's credit history linking to a 404.
    from generation.models import Job

    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    job = Job.objects.create(user=staff_user, model_id="local-image", type="TEXT_TO_IMAGE", route="local")
    assert client.get(f"/admin/generation/job/{job.pk}/delete/").status_code == 403
    assert 'value="delete_selected"' not in client.get("/admin/generation/job/").content.decode()


def _save_in_admin(client, model: AiModel, **changes):
    form = admin_form(model, **changes)
    data = {name: form.data[name] for name in form.fields if form.data.get(name) is not None}
    data = {name: value for name, value in data.items() if value is not False}  # an unticked box is not sent
    response = client.post(f"/admin/generation/aimodel/{model.id}/change/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors


def test_a_model_staff_edited_keeps_their_settings_when_the_catalog_is_synced_again(admin_client):
    from django.core.management import call_command

    _save_in_admin(admin_client, AiModel.objects.get(id="ideogram-v3"), credits=9, name="Ideogram (house)")
    call_command("sync_catalog")
    model = AiModel.objects.get(id="ideogram-v3")
    assert (model.credits, model.name, model.staff_edited) == (9, "Ideogram (house)", True)


def test_unticking_staff_edited_takes_the_catalog_settings_at_the_next_sync(admin_client):
    from django.core.management import call_command

    catalog_credits = AiModel.objects.get(id="ideogram-v3").credits
    _save_in_admin(admin_client, AiModel.objects.get(id="ideogram-v3"), credits=9)
    _save_in_admin(admin_client, AiModel.objects.get(id="ideogram-v3"), staff_edited=False)
    call_command("sync_catalog")
    model = AiModel.objects.get(id="ideogram-v3")
    assert (model.credits, model.staff_edited) == (catalog_credits, False)


def test_a_price_edited_in_the_model_list_is_kept_by_the_next_sync(admin_client):
    from django.core.management import call_command

    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": "ideogram-v3",
        "form-0-enabled": "on",
        "form-0-credits": "9",
        "_save": "Save",
    }
    admin_client.post("/admin/generation/aimodel/?q=ideogram-v3", data)
    call_command("sync_catalog")
    assert AiModel.objects.get(id="ideogram-v3").credits == 9


@pytest.mark.parametrize(
    ("field", "value"),
    [("timeoutSeconds", 7200), ("timeoutSeconds", 0), ("route", "carrier-pigeon"), ("credits", 10**12 + 1)],
)
def test_sync_catalog_refuses_an_entry_the_admin_would_refuse(tmp_path, field, value):
    entries = json.loads(CATALOG_FILE.read_text())["models"]
    broken = tmp_path / "catalog.json"
    broken.write_text(json.dumps({"models": [{**entries[0], field: value}]}))
    with pytest.raises(ValueError, match=entries[0]["id"]):
        catalog_sync(path=broken)


def _updated_at() -> dict[str, object]:
    return dict(AiModel.objects.values_list("id", "updated_at"))


def test_syncing_an_unchanged_catalog_again_writes_nothing():
    from django.core.management import call_command

    before, out = _updated_at(), StringIO()
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        call_command("sync_catalog", stdout=out)
    entries = len(json.loads(CATALOG_FILE.read_text())["models"])
    assert f"0 created, 0 updated, {entries} unchanged" in out.getvalue()
    assert _updated_at() == before


def test_a_changed_catalog_entry_is_the_one_model_updated(tmp_path):
    entries = json.loads(CATALOG_FILE.read_text())["models"]
    changed = tmp_path / "catalog.json"
    changed.write_text(json.dumps({"models": [{**entries[0], "description": "Renamed upstream."}, *entries[1:]]}))
    before = _updated_at()
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        counts = catalog_sync(path=changed)
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (0, 1, len(entries) - 1)
    assert {model_id for model_id, at in _updated_at().items() if at != before[model_id]} == {entries[0]["id"]}


def test_a_model_staff_edited_is_counted_as_kept(admin_client):
    from django.core.management import call_command

    _save_in_admin(admin_client, AiModel.objects.get(id="ideogram-v3"), credits=9)
    out = StringIO()
    call_command("sync_catalog", stdout=out)
    assert "0 updated" in out.getvalue() and "1 kept as staff edited" in out.getvalue()


def test_credits_past_what_one_debit_may_take_are_refused():
    model = AiModel.objects.get(id="kokoro")  # priced per thousand characters: Credits is its least price
    form = admin_form(model, credits=10**12 + 1)
    assert not form.is_valid() and "0 to 1,000,000,000,000" in str(form.errors["credits"])
