"""The optional parts of jotkit and the extra that installs each.

The core (``jotkit.jose``, the CLI's ``token`` and ``keys`` commands) needs only the base
dependencies. A part whose dependency is missing fails on import with ``MissingExtra``, whose
message is the ``pip install`` line that fixes it, never a bare ModuleNotFoundError.
"""

from __future__ import annotations

import importlib.util

__all__ = ["MissingExtra", "require_extra"]


class MissingExtra(ImportError):
    """An optional dependency of a jotkit part is not installed."""


def require_extra(part: str, install: str, *modules: str) -> None:
    """Raise MissingExtra unless every one of ``modules`` can be imported.

    ``install`` is what to put after ``pip install``, e.g. ``"'jotkit[redis]'"``.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(
            f"{part} needs {', '.join(missing)} (not installed): pip install {install}",
            name=missing[0],
        )
