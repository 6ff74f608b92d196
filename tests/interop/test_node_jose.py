"""node ``jose`` and jotkit, both directions, every algorithm node jose supports.

Two node runs for the module: node generates a key per algorithm, signs and exports the
public and private JWKs; then node verifies, with keys it imports from JWKs, the tokens that
jotkit signed with its own keys and with node's private keys imported into jotkit.
node jose 6 has no Ed448 (neither as "Ed448" nor as "EdDSA" over an Ed448 key).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from _node import NodeClients

from jotkit import Key, jwt

NODE_ALGS = [
    *("HS256", "HS384", "HS512"),
    *("RS256", "RS384", "RS512"),
    *("PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512"),
    "EdDSA",
    "Ed25519",
]
_CLAIMS: dict[str, Any] = {
    "iss": "https://auth.example",
    "sub": "user-1",
    "scope": "read write",
    "n": [1, 2.5, None, True, {"k": "é✓"}],
}


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {**_CLAIMS, "iat": now, "exp": now + 600}


@pytest.fixture(scope="module")
def node_signed(node_clients: NodeClients) -> dict[str, dict[str, Any]]:
    """Per algorithm: node's token, public JWK and private JWK."""
    answer = node_clients.run(
        "offline.mjs", {"mode": "sign", "algs": NODE_ALGS, "claims": _claims()}
    )
    return answer["signed"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def node_verified(
    node_clients: NodeClients, node_signed: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """node's verdicts on jotkit tokens: ``own-ALG`` signed with a key jotkit generated,
    ``imported-ALG`` with node's private key imported into jotkit."""
    cases: dict[str, Any] = {}
    claims = _claims()
    for alg in NODE_ALGS:
        own = Key.generate(alg)
        public = own.to_jwk(private=True) if own.kty == "oct" else own.to_jwk()
        cases[f"own-{alg}"] = {"alg": alg, "token": jwt.sign(claims, own), "jwk": public}
        imported = Key.from_jwk(node_signed[alg]["private_jwk"])
        cases[f"imported-{alg}"] = {
            "alg": alg,
            "token": jwt.sign(claims, imported),
            "jwk": node_signed[alg]["public_jwk"],
        }
    answer = node_clients.run("offline.mjs", {"mode": "verify", "cases": cases})
    return {"claims": claims, **answer["verified"]}


@pytest.mark.parametrize("alg", NODE_ALGS)
def test_jotkit_verifies_node_jose_tokens_with_nodes_exported_jwk(
    alg: str, node_signed: dict[str, dict[str, Any]]
) -> None:
    signed = node_signed[alg]
    key = Key.from_jwk(signed["public_jwk"])
    assert key.kid == signed["public_jwk"]["kid"]
    claims = jwt.verify(signed["token"], key, algorithms=[alg])
    assert {name: claims[name] for name in _CLAIMS} == _CLAIMS


@pytest.mark.parametrize("alg", NODE_ALGS)
def test_node_jose_verifies_jotkit_tokens_with_jotkits_exported_jwk(
    alg: str, node_verified: dict[str, Any]
) -> None:
    verdict = node_verified[f"own-{alg}"]
    assert verdict["ok"], verdict
    assert verdict["payload"] == node_verified["claims"]
    assert verdict["header"]["alg"] == alg


@pytest.mark.parametrize("alg", NODE_ALGS)
def test_node_jose_verifies_what_jotkit_signs_with_a_node_private_jwk(
    alg: str, node_verified: dict[str, Any]
) -> None:
    verdict = node_verified[f"imported-{alg}"]
    assert verdict["ok"], verdict
    assert verdict["payload"] == node_verified["claims"]
