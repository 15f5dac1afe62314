"""The job types, and what each one is: one row per type, from which every other table here is read."""

from dataclasses import dataclass


@dataclass(frozen=True)
class JobKind:
    label: str  # as pages name it
    category: str  # the ledger's and the usage report's: images, videos, audio or chat
    group: str  # the heading the dashboard's model picker files it under
    needs_image: bool = False  # takes an input image, and must have one
    visual: bool = False  # makes pictures: takes a size, a style, a negative prompt


KINDS: dict[str, JobKind] = {
    "TEXT_TO_IMAGE": JobKind("Text to image", "images", "Images", visual=True),
    "IMAGE_TO_IMAGE": JobKind("Image to image", "images", "Images", needs_image=True, visual=True),
    "TEXT_TO_VIDEO": JobKind("Text to video", "videos", "Video", visual=True),
    "IMAGE_TO_VIDEO": JobKind("Image to video", "videos", "Video", needs_image=True, visual=True),
    "REFERENCE_TO_VIDEO": JobKind("Reference to video", "videos", "Video", needs_image=True, visual=True),
    "TEXT_TO_SPEECH": JobKind("Text to speech", "audio", "Speech"),
    "TEXT_TO_MUSIC": JobKind("Text to music", "audio", "Music"),
    "CHAT": JobKind("Chat", "chat", "Chat"),
}

JOB_TYPES = tuple(KINDS)
TYPE_LABELS = {job_type: kind.label for job_type, kind in KINDS.items()}
CATEGORY = {job_type: kind.category for job_type, kind in KINDS.items()}
NEEDS_IMAGE = frozenset(job_type for job_type, kind in KINDS.items() if kind.needs_image)
VISUAL = frozenset(job_type for job_type, kind in KINDS.items() if kind.visual)
