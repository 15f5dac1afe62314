import mimetypes

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from generation.outputs import output_name_from_token


@login_required
def generate(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"nav": "generate", "title": "Generate", "feature": "The playground"})


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"nav": "jobs", "title": "Jobs", "feature": "Job history"})


def output_file(request: HttpRequest, token: str, filename: str) -> HttpResponse:
    """A generated file behind a signed, expiring link: the signature is the permission."""
    name = output_name_from_token(token)
    if name is None or not default_storage.exists(name):
        message = "This link is invalid or has expired. Fetch the job again for a fresh link."
        return JsonResponse({"error": {"code": "forbidden", "status": 403, "message": message}}, status=403)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response
