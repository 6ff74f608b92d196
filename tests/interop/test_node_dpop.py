"""node ``jose`` verifies jotkit's DPoP proofs with ``jwtVerify`` + ``EmbeddedJWK``.

One node run for the module checks, per algorithm, a proof ``make_proof`` made (signature
with the embedded key, typ, iat, required claims) and that node's RFC 7638 thumbprint of the
embedded key is jotkit's; a proof with a tampered payload must fail there too.
"""

from __future__ import annotations

from typing import Any

import pytest
from _node import NodeClients

from jotkit import Key
from jotkit.jose.dpop import access_token_hash, make_proof

ALGS = ["ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"]
URL = "https://api.example.test/me"


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {alg: Key.generate(alg) for alg in ALGS}


@pytest.fixture(scope="module")
def node_verdicts(node_clients: NodeClients, keys: dict[str, Key]) -> dict[str, Any]:
    proofs = {
        alg: make_proof(key, "POST", URL + "?q=1", access_token="tok", alg=alg)
        for alg, key in keys.items()
    }
    good = proofs["ES256"]
    other = make_proof(keys["ES256"], "GET", URL)
    proofs["tampered"] = good.split(".")[0] + "." + other.split(".")[1] + "." + good.split(".")[2]
    return node_clients.run("dpop.mjs", {"proofs": proofs})["verified"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("alg", ALGS)
def test_node_jose_verifies_jotkit_proof(
    node_verdicts: dict[str, Any], keys: dict[str, Key], alg: str
) -> None:
    verdict = node_verdicts[alg]
    assert verdict["ok"], verdict
    assert verdict["header"]["typ"] == "dpop+jwt" and verdict["header"]["alg"] == alg
    assert verdict["payload"]["htm"] == "POST" and verdict["payload"]["htu"] == URL
    assert verdict["payload"]["ath"] == access_token_hash("tok")
    assert verdict["jkt"] == keys[alg].thumbprint()


def test_node_jose_refuses_a_tampered_proof(node_verdicts: dict[str, Any]) -> None:
    verdict = node_verdicts["tampered"]
    assert not verdict["ok"]
    assert verdict["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
