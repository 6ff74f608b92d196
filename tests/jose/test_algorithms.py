"""The ECDSA R||S to DER conversion agrees with cryptography's own encoder."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from jotkit.jose.algorithms import _der_signature


@pytest.mark.parametrize("size", [32, 48, 66])
@pytest.mark.parametrize(
    "r_first, s_first", [(0x01, 0x7F), (0x80, 0xFF), (0x00, 0x00), (0x7F, 0x80)]
)
def test_der_signature_matches_cryptography(size: int, r_first: int, s_first: int) -> None:
    r = bytes([r_first]) + bytes(range(1, size))
    s = bytes([s_first]) + bytes(reversed(range(1, size)))
    expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    assert _der_signature(r.lstrip(b"\0"), s.lstrip(b"\0")) == expected
