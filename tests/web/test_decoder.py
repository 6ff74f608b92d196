"""The decoder in a real headless Chromium, on the page's files served as they ship.

Tokens and keys come from jotkit.jose; the page must read them, warn like the CLI, and verify
them with WebCrypto under the core's rules. Server-backed checks are in test_server_page.py.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import pytest
from _web_helpers import (
    compact,
    fresh_claims,
    open_page,
    paste_token,
    screenshot,
    tamper,
    verify_in_page,
    warning_ids,
)

from jotkit.jose import Key, KeySet, jwt
from jotkit.jose import claims as core_claims
from jotkit.jose.b64 import b64encode


@pytest.fixture
def decoder(page: Any, static_url: str) -> Any:
    open_page(page, static_url)
    return page


def public_jwk(key: Key) -> str:
    return json.dumps(key.public().to_jwk())


# -- decoding -------------------------------------------------------------------------------


def test_decodes_token_into_coloured_parts_header_payload_and_times(
    decoder: Any, artifacts: Any
) -> None:
    key = Key.generate("ES256", kid="k1")
    token = jwt.sign(fresh_claims(900, scope="read"), key, header={"typ": "at+jwt"})
    paste_token(decoder, token)
    segments = token.split(".")
    assert decoder.locator("#token-parts .part-header").inner_text() == segments[0]
    assert decoder.locator("#token-parts .part-payload").inner_text() == segments[1]
    assert decoder.locator("#token-parts .part-signature").inner_text() == segments[2]
    assert json.loads(decoder.locator("#header-json").inner_text()) == {
        "alg": "ES256",
        "typ": "at+jwt",
        "kid": "k1",
    }
    assert json.loads(decoder.locator("#payload-json").inner_text())["scope"] == "read"
    assert "in 15 min" in decoder.locator("#times dd[data-claim='exp']").inner_text()
    assert decoder.locator("#times dd[data-claim='lifetime']").inner_text() == "15 min"
    assert "signed, not encrypted" in decoder.locator("#not-encrypted").inner_text()
    assert warning_ids(decoder) == []
    screenshot(decoder, artifacts, "decoder-es256")


def test_expired_token_reads_as_expired_in_words(decoder: Any) -> None:
    key = Key.generate("HS256")
    now = int(time.time())
    paste_token(decoder, jwt.sign({"iat": now - 4 * 3600, "exp": now - 3 * 3600}, key))
    assert "3 h ago" in decoder.locator("#times dd[data-claim='exp']").inner_text()
    assert decoder.locator("#times dd[data-claim='status']").inner_text() == "expired"


@pytest.mark.parametrize(
    ("header", "claims", "expected"),
    [
        ({"alg": "none"}, fresh_claims(), ["alg-none"]),
        ({"alg": "NoNe"}, fresh_claims(), ["alg-none"]),
        ({"alg": "HS256"}, {"sub": "alice"}, ["no-exp"]),
        ({"alg": "HS256"}, fresh_claims(2 * 3600), ["long-lifetime"]),
        (
            {"alg": "HS256"},
            fresh_claims(password="x", **{"Api-Key": "y"}, email="a@b.c", phone="1"),
            ["personal-claim", "personal-claim", "secret-claim", "secret-claim"],
        ),
        (
            {"alg": "RS256", "jku": "https://evil.example/jwks", "x5u": "https://evil.example/c"},
            fresh_claims(),
            ["header-jku", "header-x5u"],
        ),
        (
            {"alg": "RS256", "jwk": {"kty": "oct", "k": "AA"}, "x5c": ["MII="]},
            fresh_claims(),
            ["header-jwk", "header-x5c"],
        ),
    ],
    ids=[
        "alg-none",
        "alg-none-mixed-case",
        "no-exp",
        "long-lifetime",
        "claims",
        "jku-x5u",
        "jwk-x5c",
    ],
)
def test_warns_like_the_cli(decoder: Any, header: Any, claims: Any, expected: list[str]) -> None:
    paste_token(decoder, compact(header, claims) + "c2ln")
    assert warning_ids(decoder) == expected
    assert decoder.locator("#not-encrypted").is_visible()


def test_secret_claim_warning_names_the_claim(decoder: Any, artifacts: Any) -> None:
    token = compact({"alg": "none"}, {"sub": "alice", "password": "hunter2", "email": "a@b.c"})
    paste_token(decoder, token)
    texts = decoder.locator("#warnings li.warning").all_inner_texts()
    assert any('"password" looks like a secret' in text for text in texts)
    assert any('"email" is personal data' in text for text in texts)
    screenshot(decoder, artifacts, "decoder-warnings")


def test_claim_name_lists_are_the_cores(decoder: Any) -> None:
    names = decoder.evaluate(
        "import('/jose.js').then(m => [m.SECRET_CLAIM_NAMES, m.PERSONAL_CLAIM_NAMES])"
    )
    assert set(names[0]) == core_claims.SECRET_CLAIM_NAMES
    assert set(names[1]) == core_claims.PERSONAL_CLAIM_NAMES
    # A registered claim named like a personal one must not be flagged, as in the core.
    paste_token(decoder, compact({"alg": "HS256"}, fresh_claims(client_id="app", sid="s1")))
    assert warning_ids(decoder) == []


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc", "a compact JWS has 3 segments, this has 1"),
        ("a.b.c.d.e", "encrypted JWE"),
        ('{"payload":"e30","signatures":[]}', "JSON serialization"),
        ("eyJ+.e30.", "not strict unpadded base64url"),
        # {"alg":"HS256","x":12} spelt with a stray bit in its last character ("Q" -> "R")
        ("eyJhbGciOiJIUzI1NiIsIngiOjEyfR.e30.", "header is not canonical base64url"),
        (b64encode(b"[1]") + ".e30.", "header must be a JSON object"),
        (
            b64encode(b'{"alg":"HS256"}') + "." + b64encode(b"not json") + ".",
            "payload is not valid JSON",
        ),
    ],
    ids=[
        "one-segment",
        "jwe",
        "json-serialization",
        "padding-alphabet",
        "non-canonical",
        "array-header",
        "non-json-payload",
    ],
)
def test_malformed_tokens_say_why(decoder: Any, token: str, message: str) -> None:
    paste_token(decoder, token)
    error = decoder.get_by_role("alert")
    assert message in error.inner_text()
    assert decoder.locator("#decoded-content").is_hidden()


def test_token_text_is_shown_as_text_never_as_html(decoder: Any) -> None:
    attack = "<img src=x onerror=window.__pwned=1>"
    token = compact({"alg": "none", "kid": attack}, fresh_claims(**{attack: attack}))
    paste_token(decoder, token)
    assert attack in decoder.locator("#payload-json").inner_text()
    assert decoder.locator("img").count() == 0
    assert decoder.evaluate("window.__pwned") is None


def test_invisible_and_bidi_characters_are_shown_escaped(decoder: Any) -> None:
    # U+202E makes "nimda" read "admin"; U+200B hides at the end of "admin".
    paste_token(
        decoder, compact({"alg": "HS256"}, fresh_claims(role="\u202enimda", sub="admin\u200b"))
    )
    shown = decoder.locator("#payload-json").inner_text()
    assert '"role": "\\u202enimda"' in shown and '"sub": "admin\\u200b"' in shown
    assert "\u202e" not in shown and "\u200b" not in shown


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"exp": 1e400}', "number out of range"),
        (b'{"sub": "\\ud800"}', "lone UTF-16 surrogate"),
        (b"[" * 1100 + b"]" * 1100, "nests deeper than 1024"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nests deeper than 1024"),
    ],
    ids=["overflowing-number", "lone-surrogate", "deep-array", "very-deep-object"],
)
def test_json_the_core_refuses_is_refused_here_too(
    decoder: Any, payload: bytes, message: str
) -> None:
    paste_token(decoder, b64encode(b'{"alg":"HS256"}') + "." + b64encode(payload) + ".c2ln")
    error = decoder.get_by_role("alert").inner_text()
    assert message in error and "call stack" not in error


@pytest.mark.parametrize("value", [None, "123", True])
def test_a_time_claim_that_is_not_a_number_is_warned_about(decoder: Any, value: Any) -> None:
    paste_token(decoder, compact({"alg": "HS256"}, fresh_claims(auth_time=value)))
    assert warning_ids(decoder) == ["bad-date"]


def test_a_token_over_the_size_cap_is_warned_about(decoder: Any) -> None:
    paste_token(decoder, compact({"alg": "HS256"}, fresh_claims(note="x" * 9000)))
    assert warning_ids(decoder) == ["token-too-large"]


# -- verification with pasted keys ----------------------------------------------------------


@pytest.mark.parametrize(
    "alg",
    [
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
        "Ed25519",
    ],
)
def test_verifies_every_webcrypto_algorithm_with_a_pasted_jwk(decoder: Any, alg: str) -> None:
    key = Key.generate(alg)
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(key))
    assert verdict == "valid", text
    assert f"{alg} signature verified" in text


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_verifies_hmac_with_a_base64url_secret(decoder: Any, alg: str) -> None:
    key = Key.generate(alg)
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    secret = key.to_jwk(private=True)["k"]
    verdict, text = verify_in_page(decoder, "secret", secret=secret, encoding="base64url")
    assert verdict == "valid", text


def test_verifies_hmac_with_a_text_secret_and_an_oct_jwk(decoder: Any) -> None:
    secret = "correct horse battery staple, long enough"
    key = Key.from_secret(secret.encode(), alg="HS256")
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    assert verify_in_page(decoder, "secret", secret=secret)[0] == "valid"
    assert verify_in_page(decoder, "key", key=json.dumps(key.to_jwk(private=True)))[0] == "valid"
    verdict, text = verify_in_page(decoder, "secret", secret=secret + "!")
    assert verdict == "invalid"
    assert "ERR_JWS_SIGNATURE_INVALID" in text


@pytest.mark.parametrize("alg", ["RS256", "PS512", "ES384", "Ed25519"])
def test_verifies_with_a_pem_public_key(decoder: Any, alg: str) -> None:
    key = Key.generate(alg)
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    verdict, text = verify_in_page(decoder, "key", key=key.public().to_pem().decode())
    assert verdict == "valid", text


def test_jwks_picks_the_key_named_by_kid(decoder: Any) -> None:
    keys = [Key.generate("ES256", kid="old"), Key.generate("ES256", kid="new")]
    jwks = json.dumps(KeySet(key.public() for key in keys).to_jwks())
    paste_token(decoder, jwt.sign(fresh_claims(), keys[1]))
    verdict, text = verify_in_page(decoder, "key", key=jwks)
    assert verdict == "valid"
    assert 'kid "new"' in text
    stranger = Key.generate("ES256", kid="unknown")
    paste_token(decoder, jwt.sign(fresh_claims(), stranger))
    verdict, text = verify_in_page(decoder, "key", key=jwks)
    assert verdict == "invalid"
    assert "ERR_JWKS_NO_MATCHING_KEY" in text


def test_tampered_payload_is_invalid(decoder: Any, artifacts: Any) -> None:
    key = Key.generate("ES256")
    token = jwt.sign(fresh_claims(), key)
    paste_token(decoder, tamper(token, sub="admin"))
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(key))
    assert verdict == "invalid"
    assert "ERR_JWS_SIGNATURE_INVALID" in text
    screenshot(decoder, artifacts, "decoder-tampered-invalid")


def test_malformed_payload_is_refused_before_the_signature(decoder: Any) -> None:
    # As the core: the payload's encoding is checked first, so garbage everywhere says so.
    key = Key.generate("ES256")
    head, payload, sig = jwt.sign(fresh_claims(), key).split(".")
    paste_token(decoder, f"{head}.{payload}+.{sig[::-1]}")
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(key))
    assert verdict == "invalid"
    assert "ERR_JWS_MALFORMED" in text
    assert "payload" in text


def test_a_different_key_is_invalid(decoder: Any) -> None:
    paste_token(decoder, jwt.sign(fresh_claims(), Key.generate("RS256", kid="k")))
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(Key.generate("RS256", kid="k")))
    assert verdict == "invalid"
    assert "ERR_JWS_SIGNATURE_INVALID" in text


# -- the core's rules -----------------------------------------------------------------------


def test_alg_none_is_never_accepted(decoder: Any) -> None:
    paste_token(decoder, compact({"alg": "none"}, fresh_claims()))
    for source, value in [("key", public_jwk(Key.generate("ES256"))), ("secret", "x" * 64)]:
        verdict, text = verify_in_page(decoder, source, key=value, secret=value)
        assert verdict == "invalid"
        assert "ERR_JOSE_ALG_UNSUPPORTED" in text


def test_hmac_token_signed_with_the_public_key_is_refused(decoder: Any) -> None:
    # Algorithm confusion (CVE-2016-10555): HS256 "signed" with the RSA public key's PEM text.
    public_pem = Key.generate("RS256").public().to_pem()
    signing_input = compact({"alg": "HS256"}, fresh_claims())[:-1]
    mac = hmac.new(public_pem, signing_input.encode(), "sha256").digest()
    paste_token(decoder, f"{signing_input}.{b64encode(mac)}")
    verdict, text = verify_in_page(decoder, "key", key=public_pem.decode())
    assert verdict == "invalid"
    assert "ERR_JOSE_ALG_NOT_ALLOWED" in text
    verdict, text = verify_in_page(decoder, "secret", secret=public_pem.decode())
    assert verdict == "invalid"
    assert "ERR_JWK_INVALID" in text


@pytest.mark.parametrize("form", ["pem", "der"])
def test_public_key_bytes_are_refused_as_a_secret_however_spelt(decoder: Any, form: str) -> None:
    # The same confusion with the key's bytes in base64url, or as an oct JWK's "k": the page
    # must look at the decoded bytes, as jwk.refuse_asymmetric_secret does.
    public = Key.generate("ES256").public()
    material = public.to_pem() if form == "pem" else public.to_der()
    signing_input = compact({"alg": "HS256"}, fresh_claims())[:-1]
    mac = hmac.new(material, signing_input.encode(), "sha256").digest()
    paste_token(decoder, f"{signing_input}.{b64encode(mac)}")
    spelt = b64encode(material)
    verdict, text = verify_in_page(decoder, "secret", secret=spelt, encoding="base64url")
    assert verdict == "invalid" and "ERR_JWK_INVALID" in text
    oct_jwk = json.dumps({"kty": "oct", "k": spelt})
    verdict, text = verify_in_page(decoder, "key", key=oct_jwk)
    assert verdict == "invalid" and "ERR_JWK_INVALID" in text


@pytest.mark.parametrize(
    ("jwk", "code"),
    [
        ({"key_ops": "verify"}, "ERR_JWK_INVALID"),
        ({"kty": "constructor"}, "ERR_JWK_INVALID"),
        ({"kty": "__proto__"}, "ERR_JWK_INVALID"),
        ({"alg": "toString"}, "ERR_JWK_INVALID"),
    ],
    ids=["key-ops-string", "kty-constructor", "kty-proto", "alg-tostring"],
)
def test_malformed_jwks_are_refused_like_the_core(
    decoder: Any, jwk: dict[str, Any], code: str
) -> None:
    key = Key.generate("ES256")
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    verdict, text = verify_in_page(decoder, "key", key=json.dumps({**key.public().to_jwk(), **jwk}))
    assert verdict == "invalid" and code in text, text


def test_an_alg_named_like_an_object_property_is_unsupported(decoder: Any) -> None:
    paste_token(decoder, compact({"alg": "constructor"}, fresh_claims()))
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(Key.generate("ES256")))
    assert verdict == "invalid" and "ERR_JOSE_ALG_UNSUPPORTED" in text


def test_algorithm_must_fit_the_curve(decoder: Any) -> None:
    key = Key.generate("ES256")
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(Key.generate("ES384")))
    assert verdict == "invalid"
    assert "ERR_JOSE_ALG_NOT_ALLOWED" in text


def test_short_hmac_secret_is_refused(decoder: Any) -> None:
    token = compact({"alg": "HS256"}, fresh_claims())[:-1]
    mac = hmac.new(b"short", token.encode(), "sha256").digest()
    paste_token(decoder, f"{token}.{b64encode(mac)}")
    verdict, text = verify_in_page(decoder, "secret", secret="short")
    assert verdict == "invalid"
    assert "at least 32 bytes" in text


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": -3600}, "ERR_JWT_EXPIRED"),
        ({"nbf": 3600}, "ERR_JWT_NOT_YET_VALID"),
        ({"iat": 3600}, "ERR_JWT_INVALID_IAT"),
        ({"exp": None}, "ERR_JWT_MISSING_EXP"),
        ({"exp": True}, "ERR_JWT_INVALID_EXP"),
    ],
    ids=["expired", "not-yet-valid", "issued-in-future", "no-exp", "boolean-exp"],
)
def test_time_claims_are_checked(decoder: Any, claims: dict[str, Any], code: str) -> None:
    now = int(time.time())
    body = fresh_claims()
    for name, value in claims.items():
        if value is None:
            del body[name]
        else:
            body[name] = value if isinstance(value, bool) else now + value
    key = Key.generate("HS256")
    paste_token(decoder, compact({"alg": "HS256"}, body, key))
    verdict, text = verify_in_page(decoder, "key", key=json.dumps(key.to_jwk(private=True)))
    assert verdict == "invalid"
    assert code in text


def test_issuer_and_audience_are_checked_when_given(decoder: Any) -> None:
    key = Key.generate("ES256")
    paste_token(decoder, jwt.sign(fresh_claims(aud="api"), key))
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(key))
    assert verdict == "valid"
    assert "audience not checked" in text
    jwk = public_jwk(key)
    assert (
        verify_in_page(decoder, "key", key=jwk, issuer="https://issuer.example", audience="api")[0]
        == "valid"
    )
    verdict, text = verify_in_page(
        decoder, "key", key=jwk, issuer="https://issuer.example", audience="other"
    )
    assert (verdict, "ERR_JWT_INVALID_AUD" in text) == ("invalid", True), text
    verdict, text = verify_in_page(
        decoder, "key", key=jwk, issuer="https://evil.example", audience="api"
    )
    assert (verdict, "ERR_JWT_INVALID_ISS" in text) == ("invalid", True)


def test_repeated_header_name_is_refused(decoder: Any) -> None:
    key = Key.generate("HS256")
    header = b64encode(b'{"alg":"HS256","kid":"a","kid":"b"}')
    signing_input = f"{header}.{b64encode(json.dumps(fresh_claims()).encode())}"
    token = f"{signing_input}.{b64encode(key.sign('HS256', signing_input.encode()))}"
    paste_token(decoder, token)
    verdict, text = verify_in_page(decoder, "key", key=json.dumps(key.to_jwk(private=True)))
    assert verdict == "invalid"
    assert "repeats the member name" in text


def test_zero_ecdsa_signature_is_invalid(decoder: Any) -> None:
    # CVE-2022-21449: r = s = 0 "verified" in some Java versions.
    key = Key.generate("ES256")
    token = compact({"alg": "ES256"}, fresh_claims())[:-1] + "." + b64encode(bytes(64))
    paste_token(decoder, token)
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(key))
    assert verdict == "invalid"
    assert "ERR_JWS_SIGNATURE_INVALID" in text


def test_ed448_says_webcrypto_lacks_it(decoder: Any) -> None:
    key = Key.generate("Ed448")
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    verdict, text = verify_in_page(decoder, "key", key=public_jwk(key))
    assert verdict == "invalid"
    assert "Ed448 is not available in WebCrypto" in text


def test_private_keys_are_not_wanted(decoder: Any) -> None:
    key = Key.generate("ES256")
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    verdict, text = verify_in_page(decoder, "key", key=key.to_pem(private=True).decode())
    assert verdict == "invalid"
    assert "this is a private key" in text
    verdict, text = verify_in_page(decoder, "key", key=json.dumps(key.to_jwk(private=True)))
    assert verdict == "valid"
    assert "only its public part was used" in text


def test_pasted_key_verification_sends_nothing(decoder: Any) -> None:
    requests: list[str] = []
    decoder.on("request", lambda request: requests.append(request.url))
    key = Key.generate("ES256")
    paste_token(decoder, jwt.sign(fresh_claims(), key))
    assert verify_in_page(decoder, "key", key=public_jwk(key))[0] == "valid"
    assert requests == []


# -- accessibility and layout ---------------------------------------------------------------


def test_every_control_has_a_label(decoder: Any) -> None:
    unlabeled = decoder.evaluate(
        """[...document.querySelectorAll('input, textarea, select')]
            .filter(el => el.labels.length === 0).map(el => el.id || el.name)"""
    )
    assert unlabeled == []


def tab_to(page: Any, element_id: str, *, presses: int = 30) -> None:
    for _ in range(presses):
        if page.evaluate("document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}")


def test_verify_by_keyboard_alone(decoder: Any) -> None:
    key = Key.generate("HS256")
    secret = key.to_jwk(private=True)["k"]
    decoder.keyboard.press("Tab")
    assert decoder.evaluate("document.activeElement.textContent") == "Skip to content"
    tab_to(decoder, "token")
    decoder.keyboard.insert_text(jwt.sign(fresh_claims(), key))
    # The decoded header and payload are focusable (scrollable regions), then the radios.
    for _ in range(5):
        decoder.keyboard.press("Tab")
        if decoder.evaluate("document.activeElement.name") == "key-source":
            break
    decoder.keyboard.press("ArrowDown")  # arrows move within a radio group
    decoder.keyboard.press("ArrowDown")
    assert decoder.get_by_label("A shared secret (HMAC)").is_checked()
    tab_to(decoder, "secret")
    decoder.keyboard.insert_text(secret)
    decoder.keyboard.press("Tab")
    decoder.keyboard.press("ArrowDown")
    assert decoder.get_by_label("The secret is written as").input_value() == "base64url"
    tab_to(decoder, "verify-button")
    decoder.keyboard.press("Enter")
    decoder.locator("#verify-result[data-verdict='valid']").wait_for()


def test_readable_on_a_phone(browser: Any, static_url: str, artifacts: Any) -> None:
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    phone = context.new_page()
    open_page(phone, static_url)
    key = Key.generate("RS256")
    paste_token(phone, jwt.sign(fresh_claims(3 * 3600, email="alice@example.com"), key))
    verdict, _ = verify_in_page(phone, "key", key=public_jwk(key))
    assert verdict == "valid"
    overflow = phone.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    screenshot(phone, artifacts, "decoder-phone")
    context.close()
