"""Serve the app under the issuer's path, and its metadata where RFC 8414 §3.1 puts it.

An issuer with a path (``https://host/tenant``: behind a reverse proxy, or one of several
tenants on a host) advertises every URL under that path, and its metadata at
``https://host/.well-known/oauth-authorization-server/tenant``: between the host and the
path, outside the prefix. Requests arrive at jotkit either with the prefix (``root_path``
unset: it defaults to the issuer's path, and the proxy passes paths through) or without it
(``root_path = "/"``: the proxy strips it). Either way the metadata's own location is
answered, and the ASGI ``root_path`` is the public prefix, so the OpenAPI document and
``/docs`` name the URLs clients use.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from jotkit.server.errors import error_response
from jotkit.server.metadata import METADATA_PATH, OPENID_CONFIGURATION_PATH

__all__ = ["IssuerPaths"]


class IssuerPaths:
    """ASGI middleware for an issuer with a path (``public_path``, e.g. "/tenant").

    ``served_path`` is the prefix requests arrive with ("" when the proxy strips it); a
    request outside it gets 404 ``not_found`` naming the prefix, and a request for the bare
    prefix is redirected to the prefix and a slash (the page's relative links need it).
    """

    def __init__(self, app: ASGIApp, *, public_path: str, served_path: str) -> None:
        self.app = app
        self.public_path = public_path
        self.served_path = served_path
        # RFC 8414 §3.1 locations (and the OpenID one, to say clearly that it is not one).
        self._inserted = {
            METADATA_PATH + public_path: METADATA_PATH,
            OPENID_CONFIGURATION_PATH + public_path: OPENID_CONFIGURATION_PATH,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        internal = self._inserted.get(path)
        if internal is not None:
            scope = {**scope, "path": internal, "raw_path": internal.encode(), "root_path": ""}
        elif self.served_path and path == self.served_path:
            query = scope.get("query_string", b"").decode("latin-1")
            location = f"{path}/" + (f"?{query}" if query else "")
            await RedirectResponse(location, status_code=308)(scope, receive, send)
            return
        elif self.served_path and not path.startswith(self.served_path + "/"):
            answer = error_response(
                "not_found", f"this server answers under {self.served_path}/ (the issuer's path)"
            )
            await answer(scope, receive, send)
            return
        else:
            # Starlette routes on the path less root_path when it starts with it, else on the
            # whole path: one rule for both proxy shapes.
            scope = {**scope, "root_path": self.served_path or self.public_path}
        await self.app(scope, receive, send)
