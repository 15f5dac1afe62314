"""Project-level API views that belong to no single app."""

import logging
from pathlib import Path

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flixly_site.celery import app as celery_app

logger = logging.getLogger("flixly.health")


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.warning("Health check: database unreachable", exc_info=True)
        return False


def broker_ok() -> bool:
    if settings.CELERY_BROKER_URL == "filesystem://":
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        return folder.is_dir()
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        logger.warning("Health check: broker unreachable", exc_info=True)
        return False


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        responses=inline_serializer(
            "Health",
            {"status": serializers.CharField(), "database": serializers.CharField(), "broker": serializers.CharField()},
        ),
    )
    def get(self, request: Request) -> Response:
        checks = {"database": database_ok(), "broker": broker_ok()}
        body = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
        healthy = all(checks.values())
        data = {"status": "ok" if healthy else "unavailable", **body}
        if healthy:
            return Response({"data": data})
        message = "A dependency is unavailable: " + ", ".join(n for n, ok in checks.items() if not ok) + "."
        error = {"code": "service_unavailable", "status": 503, "message": message, "details": data}
        return Response({"data": data, "error": error}, status=503)
