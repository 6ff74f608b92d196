"""The web page that ``jotkit serve`` shows at ``/``: a token decoder and a lifecycle tour.

Plain static files (HTML, CSS, JavaScript modules), no build step and no external network:
the server mounts ``STATIC_DIR`` with ``StaticFiles(html=True)``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC_DIR"]

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
"""The folder holding ``index.html``, ``app.js``, ``jose.js`` and ``style.css``."""
