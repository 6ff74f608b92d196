"""Assertions shared by the JOSE rule tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def assert_raises_code(
    exc_type: type[Exception], code: str, func: Callable[..., Any], *args: Any, **kwargs: Any
) -> None:
    """``func(*args, **kwargs)`` raises exactly ``exc_type`` with the stable ``code``."""
    with pytest.raises(exc_type) as info:
        func(*args, **kwargs)
    assert type(info.value) is exc_type
    assert info.value.code == code  # type: ignore[attr-defined]
