"""`jotkit token dpop` makes proofs the guard's checker accepts; `decode` explains DPoP."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from _cli_helpers import invoke

from jotkit.jose import Key, jwt
from jotkit.jose.dpop import check_proof

URL = "https://api.example.test/me"


def test_dpop_prints_a_proof_that_checks(es256_key: Key, key_files: dict[str, Path]) -> None:
    result = invoke(
        "token", "dpop", "--key", str(key_files["private.jwk"]), "--method", "post",
        "--url", URL + "?q=1", "--access-token", "-", input="the-token\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    proof = result.stdout.strip()
    checked = check_proof(
        proof,
        method="POST",
        url=URL,
        now=time.time(),
        access_token="the-token",
        jkt=es256_key.thumbprint(),
    )
    assert checked.jkt == es256_key.thumbprint()


def test_dpop_with_a_public_key_is_refused(key_files: dict[str, Path]) -> None:
    result = invoke("token", "dpop", "--key", str(key_files["public.jwk"]), "--url", URL)
    assert result.exit_code == 2
    assert "ERR_KEY_NOT_PRIVATE" in result.output


def test_decode_says_a_bound_token_is_sender_constrained(es256_key: Key) -> None:
    token = jwt.sign({"sub": "a", "exp": int(time.time()) + 60, "cnf": {"jkt": "abc"}}, es256_key)
    result = invoke("token", "decode", "--json", token)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["dpop"]["jkt"] == "abc"
    text = invoke("token", "decode", token).stdout
    assert "sender-constrained" in text and "cnf.jkt=abc" in text


def test_decode_explains_a_proof(es256_key: Key, key_files: dict[str, Path]) -> None:
    proof = invoke("token", "dpop", "--key", str(key_files["private.jwk"]), "--url", URL)
    result = invoke("token", "decode", proof.stdout.strip())
    assert "a DPoP proof (RFC 9449) for GET " + URL in result.stdout
