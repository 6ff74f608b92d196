"""Fixtures for the guard tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _issuer import IssuerServer, IssuerState

from jotkit import Key


@pytest.fixture
def issuer_server() -> Iterator[IssuerServer]:
    server = IssuerServer(IssuerState(keys=[Key.generate("ES256", kid="k1")]))
    yield server
    server.stop()
