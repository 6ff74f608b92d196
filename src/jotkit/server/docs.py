"""``/docs``: Swagger UI for the server's OpenAPI document, from files the package installs.

FastAPI's default page loads Swagger UI from a CDN: blank offline, and a third party's script
on a page of the auth server. The files come from the pinned ``swagger-ui-bundle-v2`` wheel
(Apache-2.0, the upstream swagger-ui-dist files) and are served under ``/docs/assets``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS_PATH", "install"]

ASSETS_PATH = "/docs/assets"


def install(app: FastAPI) -> None:
    """Add GET /docs and the Swagger UI files it loads."""
    app.mount(ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy prefix (root_path) every URL the page loads carries the prefix too.
        root = request.scope.get("root_path", "").rstrip("/")
        assets = root + ASSETS_PATH
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )
