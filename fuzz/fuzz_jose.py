"""Coverage-guided fuzzing (atheris/libFuzzer) of jws.verify, jwt.verify and Key.from_jwk.

    make fuzz                     # 5 minutes (FUZZ_SECONDS=...), corpus in fuzz/corpus/
    .venv-fuzz/bin/python fuzz/fuzz_jose.py -max_total_time=60 fuzz/corpus

A finding is any exception other than a JoseError, or a broken invariant: a token that
verifies must carry a seed's header and payload (nothing forged passes), and base64url must
decode exactly its canonical spellings. The first byte of an input picks the target; the
rest is the token, the JWK's JSON, the base64url text, or a header and a payload (JSON, split
at the first NUL) that the target signs with the real secret before verifying. Keys are
fixed, so the seeds in fuzz/corpus/ stay valid across runs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import sys

import atheris

with atheris.instrument_imports():
    import orjson
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from jotkit import JoseError, Key, KeySet, jws, jwt
    from jotkit.jose.b64 import b64decode, b64encode

SECRET = hashlib.sha256(b"jotkit fuzz").digest()
HS_KEY = Key.from_secret(SECRET, alg="HS256", kid="hs")
ES_KEY = Key.from_cryptography(
    ec.derive_private_key(int.from_bytes(hashlib.sha256(b"es").digest()), ec.SECP256R1()),
    alg="ES256",
    kid="es",
)
ED_KEY = Key.from_cryptography(
    ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ed").digest()), kid="ed"
)
PUBLIC_SET = KeySet([ES_KEY.public(), ED_KEY.public()])
CLAIMS = {"sub": "fuzz", "exp": 4_102_444_800, "aud": "a", "iss": "i"}


def _seeds() -> dict[str, bytes]:
    """Seed inputs: valid tokens for each key and valid JWKs of each type."""
    tokens = [jwt.sign(CLAIMS, key) for key in (HS_KEY, ES_KEY, ED_KEY)]
    tokens.append(jws.sign(b"not json", HS_KEY, header={"typ": "x", "cty": "y"}))
    jwks = [HS_KEY.to_jwk(private=True), ES_KEY.to_jwk(private=True), ED_KEY.to_jwk()]
    jwks.append(Key.generate("RS256").public().to_jwk())
    seeds = {f"token-{i}": b"\x00" + token.encode() for i, token in enumerate(tokens)}
    seeds.update({f"jwk-{i}": b"\x01" + orjson.dumps(jwk) for i, jwk in enumerate(jwks)})
    seeds["b64"] = b"\x02" + tokens[0].split(".")[2].encode()
    header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs", "cty": "x"}
    seeds["signed"] = b"\x03" + orjson.dumps(header) + b"\x00" + orjson.dumps(CLAIMS)
    return seeds


# The signing inputs (header.payload) of the seeds' tokens: a fuzzed token that verifies must
# carry one of them, byte for byte (only the signature may differ: ECDSA's are randomized).
_GENUINE = {
    seed[1:].decode().rpartition(".")[0] for seed in _seeds().values() if seed[:1] == b"\x00"
}


def _verify_token(text: str) -> None:
    for keys in (HS_KEY, PUBLIC_SET):
        try:
            verified = jws.verify(text, keys)
        except JoseError:
            continue
        if text.rpartition(".")[0] not in _GENUINE:
            raise AssertionError(f"a token that was never signed verified: {text[:200]!r}")
        assert verified.key.kid in ("hs", "es", "ed")
        with contextlib.suppress(JoseError):
            jwt.verify(text, keys, audience="a", issuer="i")


def _verify_signed(raw: bytes) -> None:
    """Header and payload JSON from the input, signed with the real secret: what a peer that
    holds the key could send, so the fuzzer reaches the header and claims checks."""
    header, _, payload = raw.partition(b"\x00")
    signing_input = b64encode(header) + "." + b64encode(payload)
    mac = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + b64encode(mac)
    for verify in (jws.verify, jwt.verify):
        with contextlib.suppress(JoseError):
            verify(token, HS_KEY)


def _import_jwk(raw: bytes) -> None:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    try:
        if isinstance(document, dict) and "keys" in document:
            KeySet.from_jwks(document)
        else:
            Key.from_jwk(document)
    except JoseError:
        pass


def _decode_b64(raw: bytes) -> None:
    try:
        decoded = b64decode(raw)
    except JoseError:
        text = raw.decode("latin-1")
        if len(text) % 4 != 1 and set(text) <= set(_ALPHABET):
            lenient = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            assert b64encode(lenient) != text, f"a canonical spelling was refused: {text!r}"
        return
    assert b64encode(decoded).encode() == raw, f"a non-canonical spelling decoded: {raw!r}"


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_one_input(data: bytes) -> None:
    """One libFuzzer input: any exception but JoseError (or an AssertionError) is a finding."""
    if not data:
        return
    target, rest = data[0] % 4, data[1:]
    if target == 0:
        _verify_token(rest.decode("latin-1"))
    elif target == 1:
        _import_jwk(rest)
    elif target == 2:
        _decode_b64(rest)
    else:
        _verify_signed(rest)


def main() -> None:
    corpus = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if corpus is not None:
        os.makedirs(corpus, exist_ok=True)
        for name, seed in _seeds().items():
            path = os.path.join(corpus, f"seed-{name}")
            if not os.path.exists(path):
                with open(path, "wb") as f:
                    f.write(seed)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
