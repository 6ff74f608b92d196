"""Fixtures for the command-line tests: a signing key and its files."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli_helpers import write_key_files

from jotkit.jose import Key


@pytest.fixture(scope="session")
def es256_key() -> Key:
    """One ES256 signing key for the session (kid = its thumbprint)."""
    return Key.generate("ES256")


@pytest.fixture
def key_files(es256_key: Key, tmp_path: Path) -> dict[str, Path]:
    """``es256_key`` as private.pem, public.pem, private.jwk, public.jwk and jwks.json."""
    return write_key_files(es256_key, tmp_path)
