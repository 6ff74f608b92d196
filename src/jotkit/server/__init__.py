"""The jotkit auth server (``jotkit serve``): FastAPI on uvicorn over the store."""

from __future__ import annotations

from jotkit.extras import require_extra

require_extra(
    "the jotkit server",
    "'jotkit[server]'",
    "fastapi",
    "uvicorn",
    "httptools",
    "swagger_ui_bundle",
    "argon2",
    "sqlalchemy",
    "alembic",
)

# These imports need the extra checked above.
from jotkit.server.app import build_service, create_app  # noqa: E402
from jotkit.server.settings import ConfigError, Settings, load_settings  # noqa: E402

__all__ = ["ConfigError", "Settings", "build_service", "create_app", "load_settings"]
