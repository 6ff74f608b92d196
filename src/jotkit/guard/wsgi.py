"""WSGI adapters (Flask, any WSGI app): a middleware and a Flask view decorator.

``GuardWSGIMiddleware`` authenticates each request and puts the ``Principal`` in
``environ["jotkit.claims"]``; ``flask_required(guard, scopes)`` protects one Flask view and
puts them on ``flask.g.claims``. Refusals answer 400/401/403/503 with ``WWW-Authenticate`` and
the JSON body of ``jotkit.guard.errors``; no refusal is a 500.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar, cast
from wsgiref.util import request_uri

import orjson

from jotkit.extras import require_extra
from jotkit.guard.bearer import parse_cookies
from jotkit.guard.errors import Challenge, MissingCredentials
from jotkit.guard.principal import Principal
from jotkit.jose.errors import JoseError

if TYPE_CHECKING:
    from jotkit.guard.guard import Guard

__all__ = ["GuardWSGIMiddleware", "authenticate_environ", "flask_required"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
View = TypeVar("View", bound=Callable[..., Any])


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _cookies(environ: dict[str, Any], guard: Guard) -> dict[str, str] | None:
    if guard.cookie_name is None:
        return None
    header = environ.get("HTTP_COOKIE")
    return parse_cookies(header) if header else None


def authenticate_environ(
    guard: Guard, environ: dict[str, Any], scopes: Collection[str] = ()
) -> Principal:
    """``guard.authenticate`` with what a WSGI request carries: the Authorization, Cookie
    and DPoP headers, the method and scheme://host/path (PEP 3333's URL reconstruction)."""
    return guard.authenticate(
        environ.get("HTTP_AUTHORIZATION"),
        _cookies(environ, guard),
        scopes=scopes,
        dpop=environ.get("HTTP_DPOP"),
        method=environ.get("REQUEST_METHOD", "GET"),
        url=request_uri(environ, include_query=False),
    )


class GuardWSGIMiddleware:
    """Authenticate every request before the WSGI app sees it (see the module docstring).

    ``scopes``, ``required`` and ``exempt_paths`` mean what they mean for GuardMiddleware.
    """

    def __init__(
        self,
        app: WSGIApp,
        guard: Guard,
        *,
        scopes: Collection[str] = (),
        required: bool = True,
        exempt_paths: Collection[str] = (),
    ) -> None:
        """Wrap ``app``, e.g. ``flask_app.wsgi_app = GuardWSGIMiddleware(flask_app.wsgi_app,
        guard)``."""
        self.app = app
        self.guard = guard
        self.scopes = tuple(scopes)
        self.required = required
        self.exempt_paths = frozenset(exempt_paths)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Authenticate, then call the app; a refusal is answered here."""
        if environ.get("PATH_INFO", "") in self.exempt_paths:
            return self.app(environ, start_response)
        guard = self.guard
        try:
            claims: Principal | None = authenticate_environ(guard, environ, self.scopes)
        except MissingCredentials as exc:
            if self.required:
                return self._refuse(guard.challenge(exc), start_response)
            claims = None
        except JoseError as exc:
            return self._refuse(guard.challenge(exc), start_response)
        if claims is not None:
            environ["jotkit.claims"] = claims
        return self.app(environ, start_response)

    @staticmethod
    def _refuse(answer: Challenge, start_response: StartResponse) -> list[bytes]:
        body = orjson.dumps(answer.body)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers.extend(answer.headers.items())
        start_response(_status_line(answer.status), headers)
        return [body]


def flask_required(guard: Guard, scopes: Collection[str] = ()) -> Callable[[View], View]:
    """Protect a Flask view: ``@guard.flask_required(scopes=["read"])``; Principal on ``g.claims``.

    Reuses the Principal GuardWSGIMiddleware put in the environ, else authenticates itself.
    """
    require_extra("flask_required", "'jotkit[flask]'", "flask")
    needed = tuple(scopes)

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def protected(*args: Any, **kwargs: Any) -> Any:
            from flask import g, request

            claims: Principal | None = request.environ.get("jotkit.claims")
            try:
                if claims is None:
                    claims = authenticate_environ(guard, request.environ)
                if needed:
                    claims.require_scopes(needed)
            except JoseError as exc:
                answer = guard.challenge(exc)
                return (
                    orjson.dumps(answer.body),
                    answer.status,
                    {**answer.headers, "Content-Type": "application/json"},
                )
            g.claims = claims
            return view(*args, **kwargs)

        return cast(View, protected)

    return decorate
