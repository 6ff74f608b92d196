"""panva's ``dpop`` package makes the keys and proofs; jotkit's ProofChecker and Guard check them.

For every algorithm both support (the package offers ES256, Ed25519, PS256 and RS256), node
generates a key pair (private key non-extractable), reports its RFC 7638 thumbprint, and
signs proofs with ``generateProof``; jotkit must compute the same thumbprint, accept the
proofs (with ``ath``, ``nonce``), accept a token bound to that key at the guard, and refuse
a tampered proof or one from another of node's keys.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _node import NodeClients, NodeSession

from jotkit import Key, jwt
from jotkit.guard import DPoPError, Guard
from jotkit.jose.dpop import ProofChecker, ProofPolicy

ALGS = ["ES256", "Ed25519", "PS256", "RS256"]
ISSUER = "https://auth.example.test"
URL = "https://api.example.test/me"


@pytest.fixture(scope="module")
def node(node_clients: NodeClients) -> Iterator[NodeSession]:
    session = node_clients.session("dpop_proofs.mjs")
    yield session
    session.close()


@pytest.fixture(scope="module")
def node_keys(node: NodeSession) -> dict[str, Any]:
    return node.ask({"cmd": "keys", "algs": ALGS})  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def issuer_key() -> Key:
    return Key.generate("ES256", kid="issuer")


def proof(node: NodeSession, alg: str, htm: str, htu: str, **extra: str) -> str:
    return node.ask({"cmd": "proof", "alg": alg, "htm": htm, "htu": htu, **extra})["proof"]  # type: ignore[no-any-return]


def bound_token(issuer_key: Key, jkt: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "jotkit",
        "sub": "user-1",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "cnf": {"jkt": jkt},
    }
    return jwt.sign(claims, issuer_key, header={"typ": "at+jwt"})


@pytest.mark.parametrize("alg", ALGS)
def test_node_key_has_jotkit_thumbprint(node_keys: dict[str, Any], alg: str) -> None:
    made = node_keys[alg]
    assert made["private_extractable"] is False
    public = {k: v for k, v in made["jwk"].items() if k not in ("key_ops", "ext", "alg")}
    assert Key.from_jwk(public).thumbprint() == made["jkt"]


@pytest.mark.parametrize("alg", ALGS)
def test_proof_checker_accepts_dpop_package_proof(
    node: NodeSession, node_keys: dict[str, Any], alg: str
) -> None:
    nonces = ProofPolicy(check_nonce=lambda nonce: nonce == "n-1")
    made = proof(node, alg, "POST", "https://auth.example.test/token/refresh", nonce="n-1")
    checked = ProofChecker(nonces).check(
        made, method="POST", url="https://auth.example.test/token/refresh", now=time.time()
    )
    assert checked.jkt == node_keys[alg]["jkt"]
    assert checked.nonce == "n-1"


@pytest.mark.parametrize("alg", ALGS)
def test_guard_accepts_token_bound_to_dpop_package_key(
    node: NodeSession, node_keys: dict[str, Any], issuer_key: Key, alg: str
) -> None:
    guard = Guard(issuer=ISSUER, audience="jotkit", keys=issuer_key.public())
    token = bound_token(issuer_key, node_keys[alg]["jkt"])
    made = proof(node, alg, "GET", URL, access_token=token)
    claims = guard.authenticate(f"DPoP {token}", dpop=made, method="GET", url=URL)
    assert claims.sub == "user-1" and claims.jkt == node_keys[alg]["jkt"]


@pytest.mark.parametrize("alg", ALGS)
def test_tampered_dpop_package_proof_is_refused(node: NodeSession, alg: str) -> None:
    good = proof(node, alg, "GET", URL)
    other = proof(node, alg, "POST", URL)
    tampered = good.split(".")[0] + "." + other.split(".")[1] + "." + good.split(".")[2]
    with pytest.raises(DPoPError) as caught:
        ProofChecker().check(tampered, method="POST", url=URL, now=time.time())
    assert caught.value.code == "ERR_DPOP_SIGNATURE"


def test_proof_by_another_dpop_package_key_is_refused(
    node: NodeSession, node_keys: dict[str, Any], issuer_key: Key
) -> None:
    guard = Guard(issuer=ISSUER, audience="jotkit", keys=issuer_key.public())
    token = bound_token(issuer_key, node_keys["ES256"]["jkt"])
    made = proof(node, "Ed25519", "GET", URL, access_token=token)
    with pytest.raises(DPoPError) as caught:
        guard.authenticate(f"DPoP {token}", dpop=made, method="GET", url=URL)
    assert caught.value.code == "ERR_DPOP_JKT_MISMATCH"
