"""The decoder explains DPoP (RFC 9449), in a real headless Chromium on the shipped files:
a proof item by item (htm, htu, iat, jti, ath, nonce, the embedded key and its thumbprint,
which must be jotkit's RFC 7638 thumbprint), and a token bound by ``cnf.jkt``."""

from __future__ import annotations

from typing import Any

import pytest
from _web_helpers import fresh_claims, open_page, paste_token, screenshot

from jotkit.jose import Key, jwt
from jotkit.jose.dpop import access_token_hash, make_proof


@pytest.fixture
def decoder(page: Any, static_url: str) -> Any:
    open_page(page, static_url)
    return page


def explained(page: Any, kind: str) -> dict[str, str]:
    """The DPoP panel's items by claim name, once it shows ``kind`` (proof or bound)."""
    page.locator(f"#dpop-explained[data-kind='{kind}']").wait_for()
    values = page.locator("#dpop-details dd").evaluate_all(
        "els => els.map(e => [e.dataset.claim, e.textContent])"
    )
    return dict(values)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_a_proof_is_explained_item_by_item(decoder: Any, artifacts: Any, alg: str) -> None:
    key = Key.generate(alg)
    proof = make_proof(
        key, "GET", "https://api.example.test/me?x=1", access_token="the-token", nonce="n-7"
    )
    paste_token(decoder, proof)
    items = explained(decoder, "proof")
    assert "This is a DPoP proof" in decoder.locator("#dpop-summary").inner_text()
    assert items["htm"] == "GET"
    assert items["htu"].startswith("https://api.example.test/me (")
    assert "s ago" in items["iat"] or "0 s" in items["iat"]
    assert "refuses the same proof twice" in items["jti"]
    assert items["ath"].startswith(access_token_hash("the-token") + ":")
    assert items["nonce"].startswith("n-7:")
    assert items["jwk"].startswith(f"{key.kty} public key")
    assert items["jkt"].startswith(key.thumbprint() + " (RFC 7638)")
    screenshot(decoder, artifacts, f"decoder-dpop-proof-{alg}")


def test_a_token_endpoint_proof_has_no_ath(decoder: Any) -> None:
    proof = make_proof(Key.generate("ES256"), "POST", "https://auth.example.test/login")
    paste_token(decoder, proof)
    items = explained(decoder, "proof")
    assert items["ath"].startswith("none: a proof for the token endpoint")
    assert "nonce" not in items


def test_a_bound_token_is_explained_as_sender_constrained(decoder: Any, artifacts: Any) -> None:
    client = Key.generate("ES256")
    token = jwt.sign(
        fresh_claims(300, cnf={"jkt": client.thumbprint()}),
        Key.generate("ES256"),
        header={"typ": "at+jwt"},
    )
    paste_token(decoder, token)
    items = explained(decoder, "bound")
    assert items == {"cnf.jkt": client.thumbprint()}
    summary = decoder.locator("#dpop-summary").inner_text()
    assert "Sender-constrained" in summary and "useless without the private key" in summary
    screenshot(decoder, artifacts, "decoder-dpop-bound-token")


def test_a_plain_token_gets_no_dpop_panel(decoder: Any) -> None:
    proof = make_proof(Key.generate("ES256"), "GET", "https://api.example.test/me")
    paste_token(decoder, proof)
    explained(decoder, "proof")
    paste_token(decoder, jwt.sign(fresh_claims(300), Key.generate("ES256")))
    decoder.locator("#dpop-explained").wait_for(state="hidden")
    assert decoder.locator("#dpop-explained").get_attribute("data-kind") is None


def test_the_panel_text_is_text_never_html(decoder: Any) -> None:
    key = Key.generate("ES256")
    proof = make_proof(key, "<img src=x onerror=window.pwned=1>", "https://a.test/<b>x</b>")
    paste_token(decoder, proof)
    items = explained(decoder, "proof")
    assert items["htm"] == "<img src=x onerror=window.pwned=1>"
    assert decoder.locator("#dpop-explained img").count() == 0
    assert decoder.evaluate("window.pwned") is None
