"""Deprecated since 0.1.0, removed in 0.3.0: ``jotkit.guard.principal.Principal`` (it was
``Claims``; docs/renames.md)."""

from __future__ import annotations

import warnings

from jotkit.guard.principal import Principal

__all__ = ["Claims", "Principal"]

Claims = Principal

warnings.warn(
    "jotkit.guard.claims is deprecated: import Principal from jotkit.guard",
    DeprecationWarning,
    stacklevel=2,
)
