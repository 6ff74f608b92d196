"""A Django project in one module for the adapter tests: plain views and DRF views.

``django_app(guard, middleware=...)`` points the settings at ``guard`` and returns a fresh WSGI
handler (Django reads MIDDLEWARE when the handler is built), served by ``serve_wsgi``.
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.urls import path

from jotkit.guard import Guard
from jotkit.guard.django import guard_required, scopes_required

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="adapter-tests-only-" + "x" * 40,
    INSTALLED_APPS=["rest_framework"],
    MIDDLEWARE=[],
    JOTKIT_GUARD=None,
    JOTKIT_GUARD_EXEMPT_PATHS=["/healthz"],
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": ["jotkit.guard.django.GuardAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "EXCEPTION_HANDLER": "jotkit.guard.django.exception_handler",
        # No django.contrib.auth: an unauthenticated request's user is None.
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()

from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

MIDDLEWARE = "jotkit.guard.django.GuardMiddleware"


@guard_required()
def me(request: HttpRequest) -> JsonResponse:
    claims = request.claims  # type: ignore[attr-defined]
    return JsonResponse({"sub": claims.sub, "scope": sorted(claims.scope)})


@guard_required(scopes=["admin"])
def admin(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"sub": request.claims.sub})  # type: ignore[attr-defined]


def whoami(request: HttpRequest) -> JsonResponse:
    claims = request.claims  # type: ignore[attr-defined]
    return JsonResponse({"sub": claims.sub if claims is not None else None})


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


class ApiMe(APIView):
    def get(self, request: Request) -> Response:
        return Response({"sub": request.user.username, "scope": sorted(request.auth.scope)})


class ApiAdmin(APIView):
    permission_classes = [IsAuthenticated, scopes_required("admin")]  # noqa: RUF012

    def get(self, request: Request) -> Response:
        return Response({"sub": request.auth.sub})


urlpatterns = [
    path("me", me),
    path("admin", admin),
    path("whoami", whoami),
    path("healthz", healthz),
    path("api/me", ApiMe.as_view()),
    path("api/admin", ApiAdmin.as_view()),
]


def django_app(guard: Guard, *, middleware: bool = False) -> Any:
    """A WSGI handler for the project, guarded by ``guard`` (and its middleware if asked)."""
    settings.JOTKIT_GUARD = guard
    settings.MIDDLEWARE = [MIDDLEWARE] if middleware else []
    return WSGIHandler()
