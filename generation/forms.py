"""Forms for the generation pages. They shape input only; the catalog rules live in generation.validation."""

from collections.abc import Iterable
from typing import Any

from django import forms
from django.conf import settings

from flixly_site.errors import ApplicationError
from flixly_site.forms import SubmitOnceField
from generation.kinds import JOB_TYPES, KINDS, NEEDS_IMAGE, TYPE_LABELS
from generation.models import AiModel, JobStatus
from generation.pricing import price_range
from generation.validation import upload_read

TYPE_CHOICES = list(TYPE_LABELS.items())
# Form field -> the API's camelCase name, where they differ; API field -> form field for errors.
API_NAMES = {"negative_prompt": "negativePrompt", "max_tokens": "maxTokens"}
FORM_NAMES = {"messages": "prompt", "imageUrl": "image"}  # API names whose field here has another name
# What the prompt box suggests for each kind of job; generate.js swaps it when the kind changes.
PROMPT_PLACEHOLDERS = {
    "TEXT_TO_IMAGE": "A lighthouse on a cliff at dusk, watercolor",
    "IMAGE_TO_IMAGE": "The same scene as a pencil sketch",
    "TEXT_TO_VIDEO": "Waves rolling in below a lighthouse at dusk, slow drone shot",
    "IMAGE_TO_VIDEO": "The clouds drift by and the waves roll in",
    "REFERENCE_TO_VIDEO": "The person in the image walks along a beach at sunset",
    "TEXT_TO_SPEECH": "Welcome to Flixly. Your video is ready to download.",
    "TEXT_TO_MUSIC": "A calm piano melody with soft strings, slow tempo",
    "CHAT": "Write a two-line poem about lighthouses.",
}
RESOLUTIONS = [("", "Model default"), ("480p", "480p"), ("720p", "720p"), ("1080p", "1080p")]


def _credits(low: int, high: int | None) -> str:
    least = f"{low} credit{'s' if low != 1 else ''}"
    if high is None:
        return f"from {least}"
    return least if low == high else f"{low} to {high} credits"


def model_choices(models: Iterable[AiModel], available: set[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Models grouped by what they make, each labelled with what a job on it can cost. In each group the
    models that run on this server come first: without upstream keys most of the catalog cannot."""
    groups: dict[str, list[tuple[str, str]]] = {
        label: [] for label in dict.fromkeys(kind.group for kind in KINDS.values())
    }
    for model in sorted(models, key=lambda model: model.id not in available):  # stable: keeps the catalog order
        label = f"{model.name} · {_credits(*price_range(model))}"
        if model.id not in available:
            label += " (unavailable)"
        group = KINDS[model.types[0]].group if model.types and model.types[0] in KINDS else "Other"
        groups.setdefault(group, []).append((model.id, label))
    return [(group, choices) for group, choices in groups.items() if choices]


def first_available(choices: list[tuple[str, list[tuple[str, str]]]], available: set[str]) -> str | None:
    """The model the picker starts on: the first that runs here, else the first at all."""
    model_ids = [model_id for _, group in choices for model_id, _ in group]
    return next((model_id for model_id in model_ids if model_id in available), model_ids[0] if model_ids else None)


def _number(label: str, help_text: str = "", **attrs: Any) -> forms.IntegerField:
    attrs.setdefault("step", 1)
    return forms.IntegerField(label=label, required=False, help_text=help_text, widget=forms.NumberInput(attrs))


def _choices_of(spec: dict) -> forms.Select:
    """A setting the model takes only a few values of is a choice of them (generate.js swaps it per model)."""
    default = f"Model default ({spec['default']})" if "default" in spec else "Model default"
    return forms.Select(choices=[("", default), *((str(value), str(value)) for value in spec["allowed"])])


def _decimal(label: str, help_text: str = "", **attrs: Any) -> forms.FloatField:
    attrs.setdefault("step", "any")
    return forms.FloatField(label=label, required=False, help_text=help_text, widget=forms.NumberInput(attrs))


class GenerateForm(forms.Form):
    # The submit's Idempotency-Key: the same form sent twice (a double click, two tabs racing) is one job.
    once = SubmitOnceField(required=False)
    model = forms.ChoiceField(label="Model")
    type = forms.ChoiceField(label="What to make", choices=TYPE_CHOICES)
    prompt = forms.CharField(
        label="Prompt",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Describe what you want. For speech, the text to read aloud; for chat, your message.",
    )
    negative_prompt = forms.CharField(
        label="Leave out (negative prompt)",
        required=False,
        help_text="Images and video only. Things you do not want to see, e.g. text, blur.",
    )
    image = forms.FileField(
        label="Input image",
        required=False,
        help_text="Needed for image to image, image to video and reference to video. PNG, JPEG, WebP or GIF.",
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp,image/gif"}),
    )
    width = _number("Width (pixels)", "Images only.")
    height = _number("Height (pixels)", "Images only.")
    steps = _number("Steps", "Images only. More steps add detail but take longer.")
    seed = _number("Seed", "Optional. The same seed and prompt give the same result again.", min=0)
    duration = _number("Duration (seconds)", "Video and music only. Whole seconds.", min=1)
    resolution = forms.ChoiceField(label="Resolution", required=False, choices=RESOLUTIONS, help_text="Video only.")
    voice = forms.CharField(label="Voice", required=False, max_length=64, help_text="Speech only.")
    speed = _decimal("Speed", "Speech only. 1 is normal speed.")
    language = forms.CharField(
        label="Language", required=False, max_length=16, help_text="Speech only. A code such as en, de or fr."
    )
    style = forms.CharField(label="Style", required=False, max_length=64, help_text="Some image models only.")
    fps = _number("Frames per second", "Video only.")
    max_tokens = _number("Longest reply (tokens)", "Chat only. A token is about three quarters of a word.", min=1)

    def __init__(self, *args: Any, models: dict[str, AiModel], routes: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = model_choices(models.values(), set(routes))
        self.fields["model"].choices = choices
        self.fields["model"].initial = first_available(choices, set(routes))  # ?model= still wins
        self.fields["voice"].widget.attrs["list"] = "voice-options"
        self.fields["language"].widget.attrs["list"] = "language-options"
        self.fields["style"].widget.attrs["list"] = "style-options"
        self._fit_number_fields(models.get(self._model_id()))
        job_type = self["type"].value()  # as sent, or as the page was opened (?type=)
        placeholder = PROMPT_PLACEHOLDERS.get(job_type, PROMPT_PLACEHOLDERS[JOB_TYPES[0]])
        self.fields["prompt"].widget.attrs["placeholder"] = placeholder

    def _model_id(self) -> str | None:
        """The model as sent or as the page was opened (?model=), else the one the picker starts on."""
        return self["model"].value() or self.fields["model"].initial

    def _fit_number_fields(self, model: AiModel | None) -> None:
        for name, field in self.fields.items():
            spec = model.params.get(API_NAMES.get(name, name), {}) if model else {}
            if isinstance(field, forms.IntegerField | forms.FloatField) and "allowed" in spec:
                field.widget = _choices_of(spec)

    def clean_image(self) -> bytes | None:
        try:
            return upload_read(self.cleaned_data.get("image") or None)
        except ApplicationError as error:
            raise forms.ValidationError((error.details or {}).get("image") or error.message) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("type") in NEEDS_IMAGE and not cleaned.get("image") and "image" not in self.errors:
            self.add_error("image", "This kind of job starts from an image: choose one.")  # the page has no imageUrl
        return cleaned

    def api_data(self) -> dict[str, Any]:
        """The body the API takes (camelCase names) from the fields that were filled in."""
        return {
            API_NAMES.get(name, name): value
            for name, value in self.cleaned_data.items()
            if name not in ("image", "once") and value not in (None, "")
        }


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *JobStatus.choices])
    type = forms.ChoiceField(label="Type", required=False, choices=[("", "Any type"), *TYPE_CHOICES])
    model = forms.ChoiceField(label="Model", required=False)

    def __init__(self, *args: Any, models: dict[str, AiModel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "Any model"), *((m.id, m.name) for m in models.values())]

    def filters(self) -> dict[str, str]:
        """The valid, non-empty filters in the names generation.selectors.jobs_for takes."""
        if not self.is_bound:
            return {}
        self.is_valid()  # an invalid choice is dropped (and noted on the form); the valid ones still apply
        return {name: value for name, value in self.cleaned_data.items() if value}


class WebhookForm(forms.Form):
    once = SubmitOnceField()
    url = forms.CharField(
        label="Endpoint URL",
        max_length=2048,  # the column's size; the SSRF guard alone would let a longer one through
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/flixly"}),
        help_text="HTTPS on a public address. Redirects are not followed.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if settings.DEBUG and not (settings.FLIXLY_OUTBOUND_ALLOW_HTTP and settings.FLIXLY_OUTBOUND_ALLOW_PRIVATE):
            self.fields["url"].help_text += (
                " To try a receiver on this machine (http://127.0.0.1:…), start Flixly with"
                " FLIXLY_OUTBOUND_ALLOW_HTTP=true FLIXLY_OUTBOUND_ALLOW_PRIVATE=true."
            )
