"""Django adapters: a middleware, a view decorator, and Django REST framework classes.

Configure the guard once, in settings: ``JOTKIT_GUARD = "myproject.auth.guard"`` (a dotted
path to a ``Guard``, or the ``Guard`` itself). Then:

- ``GuardMiddleware`` (in ``MIDDLEWARE``) authenticates every request that carries
  credentials and puts the ``Principal`` on ``request.claims`` (``None`` without credentials; a
  view that needs them uses ``guard_required``). Bad credentials are refused before any view.
  ``JOTKIT_GUARD_EXEMPT_PATHS`` lists exact paths it skips.
- ``guard_required(scopes=...)`` protects one view; the Principal is on ``request.claims``.
- ``GuardAuthentication`` is a DRF authentication class (``request.auth`` is the Principal,
  ``request.user`` a ``TokenUser``), ``scopes_required(...)`` a DRF permission, and
  ``exception_handler`` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``) renders refusals with the
  guard's JSON body and every header of the challenge.

Refusals answer 400/401/403/503 with ``WWW-Authenticate`` and the JSON body of
``jotkit.guard.errors``; no refusal is a 500. Nothing here imports Starlette or Flask.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar, cast

import orjson

from jotkit.extras import require_extra
from jotkit.guard.errors import Challenge, MissingCredentials
from jotkit.guard.principal import Principal
from jotkit.jose.errors import JoseError

require_extra("jotkit.guard.django", "'jotkit[django]'", "django")

# These imports need the extra checked above.
from django.conf import settings  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

if TYPE_CHECKING:
    from jotkit.guard.guard import Guard

__all__ = [
    "GuardAuthentication",
    "GuardMiddleware",
    "TokenUser",
    "exception_handler",
    "guard_required",
    "scopes_required",
]

View = TypeVar("View", bound=Callable[..., Any])


def configured_guard() -> Guard:
    """The ``Guard`` named by ``settings.JOTKIT_GUARD`` (imported once, then cached)."""
    return _configured_guard(getattr(settings, "JOTKIT_GUARD", None))


@functools.cache
def _import_guard(path: str) -> Any:
    return import_string(path)


def _configured_guard(value: Any) -> Guard:
    from jotkit.guard.guard import Guard

    guard = _import_guard(value) if isinstance(value, str) else value
    if not isinstance(guard, Guard):
        raise TypeError("settings.JOTKIT_GUARD must be a Guard or the dotted path to one")
    return guard


def _authenticate(guard: Guard, request: HttpRequest) -> Principal:
    # build_absolute_uri checks the host against ALLOWED_HOSTS and honours
    # SECURE_PROXY_SSL_HEADER / USE_X_FORWARDED_HOST: the URL a DPoP proof must name.
    return guard.authenticate(
        request.headers.get("Authorization"),
        request.COOKIES if guard.cookie_name is not None else None,
        dpop=request.headers.get("DPoP"),
        method=request.method or "GET",
        url=request.build_absolute_uri(request.path),
    )


def _refusal(answer: Challenge) -> HttpResponse:
    response = HttpResponse(
        orjson.dumps(answer.body), status=answer.status, content_type="application/json"
    )
    for name, value in answer.headers.items():
        response[name] = value
    return response


class GuardMiddleware:
    """Authenticate the credentials of every request before any view (module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        """Django builds it once, at startup, with the next handler in the chain."""
        self.get_response = get_response
        self.guard = configured_guard()
        self.exempt_paths = frozenset(getattr(settings, "JOTKIT_GUARD_EXEMPT_PATHS", ()))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Put the Principal on ``request.claims`` (None without credentials), or refuse."""
        claims: Principal | None = None
        if request.path_info not in self.exempt_paths:
            try:
                claims = _authenticate(self.guard, request)
            except MissingCredentials:
                claims = None
            except JoseError as exc:
                return _refusal(self.guard.challenge(exc))
        request.claims = claims
        return self.get_response(request)


def guard_required(
    scopes: Collection[str] = (), *, guard: Guard | None = None
) -> Callable[[View], View]:
    """Protect a Django view: ``@guard_required(scopes=["read"])``; Principal on ``request.claims``.

    Uses the Principal GuardMiddleware put on the request, else authenticates itself with
    ``guard`` (default: ``settings.JOTKIT_GUARD``).
    """
    needed = tuple(scopes)

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def protected(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            chosen = guard if guard is not None else configured_guard()
            claims: Principal | None = getattr(request, "claims", None)
            try:
                if claims is None:
                    claims = _authenticate(chosen, request)
                if needed:
                    claims.require_scopes(needed)
            except JoseError as exc:
                return _refusal(chosen.challenge(exc))
            request.claims = claims
            return view(request, *args, **kwargs)

        return cast(View, protected)

    return decorate


class TokenUser:
    """``request.user`` for a request authenticated by a token: who the token speaks for.

    Not a database user: the guard verifies tokens without a lookup. ``pk``/``username`` are
    the token's ``sub``; the Principal is on ``claims`` (and on DRF's ``request.auth``).
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, claims: Principal) -> None:
        """Wrap verified ``claims``."""
        self.claims = claims
        self.pk = self.username = claims.sub

    def __str__(self) -> str:
        return self.username


def _drf() -> Any:
    require_extra("the Django REST framework classes", "'jotkit[drf]'", "rest_framework")
    import rest_framework

    return rest_framework


def _rejection(answer: Challenge) -> Exception:
    _drf()
    from rest_framework.exceptions import APIException

    class GuardRejection(APIException):
        status_code = answer.status

    rejection = GuardRejection(detail=str(answer.body["error_description"]))
    # DRF's own handler sends WWW-Authenticate from auth_header; ours sends the whole answer.
    rejection.auth_header = answer.www_authenticate
    rejection.jotkit_answer = answer
    return rejection


class GuardAuthentication:
    """DRF authentication: ``DEFAULT_AUTHENTICATION_CLASSES = ["jotkit.guard.django.
    GuardAuthentication"]``. No credentials: ``None`` (DRF answers 401 with the bare Bearer
    challenge if the view needs a user); bad credentials: refused with the guard's answer.

    DRF calls its two methods by name (BaseAuthentication declares nothing more), so the
    class needs no DRF import until a refusal is raised."""

    def authenticate(self, request: Any) -> tuple[TokenUser, Principal] | None:
        """DRF's hook: the (user, auth) pair, or None without credentials."""
        guard = configured_guard()
        try:
            claims = _authenticate(guard, request._request)
        except MissingCredentials:
            return None
        except JoseError as exc:
            raise _rejection(guard.challenge(exc)) from None
        return TokenUser(claims), claims

    def authenticate_header(self, request: Any) -> str:
        """The bare challenge DRF sends with its 401 when a view needs credentials."""
        guard = configured_guard()
        answer = guard.challenge(MissingCredentials("no Bearer token"))
        return answer.www_authenticate or "Bearer"


def scopes_required(*scopes: str) -> type:
    """A DRF permission class: ``permission_classes = [scopes_required("read")]``.

    Refuses a request without Principal as DRF does (401 with the challenge), and a token that
    lacks a scope with 403 ``insufficient_scope`` naming the scopes.
    """
    _drf()
    from rest_framework.permissions import BasePermission

    class ScopesRequired(BasePermission):
        def has_permission(self, request: Any, view: Any) -> bool:
            claims = request.auth
            if not isinstance(claims, Principal):
                return False
            try:
                claims.require_scopes(scopes)
            except JoseError as exc:
                raise _rejection(configured_guard().challenge(exc)) from None
            return True

    ScopesRequired.__name__ = ScopesRequired.__qualname__ = f"ScopesRequired{scopes!r}"
    return ScopesRequired


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's exception handler, answering the guard's refusals with the guard's JSON body and
    every header of the challenge (Cache-Control, Retry-After...)."""
    _drf()
    from rest_framework.exceptions import NotAuthenticated
    from rest_framework.response import Response
    from rest_framework.views import exception_handler as drf_exception_handler

    answer: Challenge | None = getattr(exc, "jotkit_answer", None)
    if answer is None and isinstance(exc, NotAuthenticated):
        # A view that needs a user, asked without credentials: the bare challenge (RFC 6750
        # §3.1) and the same body as every other adapter's.
        missing = MissingCredentials("this resource needs a Bearer token")
        answer = configured_guard().challenge(missing)
    if answer is None:
        return drf_exception_handler(exc, context)
    return Response(dict(answer.body), status=answer.status, headers=dict(answer.headers))
