"""The jotkit auth server (``jotkit serve``): FastAPI on uvicorn over the store."""

from __future__ import annotations

from jotkit.server.app import build_service, create_app
from jotkit.server.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "build_service", "create_app", "load_settings"]
