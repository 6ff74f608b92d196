"""The ECDSA conversions agree with cryptography's own encoder: R||S to DER on both of the
verify paths (the precomputed framing of full-width R and S, and the general conversion), and
DER to R||S when signing."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from jotkit.jose.algorithms import ALGORITHMS, _der_signature, _raw_signature
from jotkit.jose.keys import Key


@pytest.mark.parametrize("size", [32, 48, 66])
@pytest.mark.parametrize(
    "r_first, s_first", [(0x01, 0x7F), (0x80, 0xFF), (0x00, 0x00), (0x7F, 0x80)]
)
def test_der_signature_matches_cryptography(size: int, r_first: int, s_first: int) -> None:
    r = bytes([r_first]) + bytes(range(1, size))
    s = bytes([s_first]) + bytes(reversed(range(1, size)))
    expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    assert _der_signature(r.lstrip(b"\0"), s.lstrip(b"\0")) == expected


@pytest.mark.parametrize("size", [32, 48, 66])
@pytest.mark.parametrize("r, s", [(1, 1), (0x80, 0x7F), (2**255 + 5, 3), (7, 2**263 - 1)])
def test_raw_signature_matches_cryptography(size: int, r: int, s: int) -> None:
    # One-byte values, a high bit that needs DER's zero byte, and (P-521) a SEQUENCE long
    # enough for the long length form.
    r, s = r % 2 ** (8 * size - 1) or 1, s % 2 ** (8 * size - 1) or 1
    der = encode_dss_signature(r, s)
    assert _raw_signature(der, size) == r.to_bytes(size, "big") + s.to_bytes(size, "big")
    full = 2 ** (8 * size) - 1 - r  # full width, top bit set
    der = encode_dss_signature(full, full)
    assert _raw_signature(der, size) == full.to_bytes(size, "big") * 2


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_ecdsa_verify_handles_every_shape_of_r_and_s(alg: str) -> None:
    # Signs until R and S have each been seen with a leading zero byte (general conversion),
    # and full width with the top bit clear and set (each of the precomputed framings; a
    # P-521 coordinate's first byte is 0 or 1, so its top bit is never set).
    key = Key.generate(alg)
    algorithm, size = ALGORITHMS[alg], ALGORITHMS[alg].size_bytes
    public = key.public().jws_verify_material
    seen: set[tuple[str, int]] = set()
    wanted = {(part, shape) for part in "rs" for shape in ((0, 1) if alg == "ES512" else (0, 1, 2))}
    for attempt in range(20_000):
        message = attempt.to_bytes(4, "big")
        signature = algorithm.sign(key.jws_sign_material, message)
        shapes = {("r", _shape(signature[:size])), ("s", _shape(signature[size:]))}
        if shapes <= seen:
            continue
        seen |= shapes
        assert algorithm.verify(public, message, signature)
        assert not algorithm.verify(public, message + b"!", signature)
        if wanted <= seen:
            break
    assert wanted <= seen


def _shape(value: bytes) -> int:
    """0: a leading zero byte, 1: full width with the top bit clear, 2: top bit set."""
    return 0 if value[0] == 0 else 1 if value[0] < 0x80 else 2
