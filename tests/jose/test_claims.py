"""JWT claims rules (RFC 7519 §4.1, RFC 8725): time claims, iss/aud/sub, typ, max_age."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from _assertions import assert_raises_code as _assert_raises
from hypothesis import given, settings
from hypothesis import strategies as st

from jotkit import (
    ExpiredToken,
    InvalidClaim,
    JoseError,
    Key,
    MalformedToken,
    NotYetValid,
    jws,
    jwt,
)
from jotkit.jose.claims import REQUIRE_EXP, validate

NOW = 1_900_000_000


@pytest.fixture(scope="module")
def key() -> Key:
    return Key.generate("ES256")


def _raw(key: Key, claims: dict[str, object]) -> str:
    """A signed token with claims jwt.sign would refuse, to test the verify side."""
    return jws.sign(orjson.dumps(claims), key)


def test_exp_required_by_default(key: Key) -> None:
    token = jwt.sign({"sub": "u"}, key, allow_no_exp=True)
    _assert_raises(InvalidClaim, "ERR_JWT_MISSING_EXP", jwt.verify, token, key, now=NOW)
    assert jwt.verify(token, key, now=NOW, require=())["sub"] == "u"


def test_expired_token_rejected(key: Key) -> None:
    token = jwt.sign({"exp": NOW - 10}, key)
    _assert_raises(ExpiredToken, "ERR_JWT_EXPIRED", jwt.verify, token, key, now=NOW)
    # exp is exclusive: a token is no longer valid at exactly exp.
    at_exp = jwt.sign({"exp": NOW}, key)
    _assert_raises(ExpiredToken, "ERR_JWT_EXPIRED", jwt.verify, at_exp, key, now=NOW)
    assert jwt.verify(jwt.sign({"exp": NOW + 1}, key), key, now=NOW)


def test_expired_token_passes_within_leeway(key: Key) -> None:
    token = jwt.sign({"exp": NOW - 10}, key)
    assert jwt.verify(token, key, now=NOW, leeway=11)["exp"] == NOW - 10
    _assert_raises(ExpiredToken, "ERR_JWT_EXPIRED", jwt.verify, token, key, now=NOW, leeway=10)


def test_nbf_in_future_rejected_and_leeway(key: Key) -> None:
    token = jwt.sign({"exp": NOW + 100, "nbf": NOW + 10}, key)
    _assert_raises(NotYetValid, "ERR_JWT_NOT_YET_VALID", jwt.verify, token, key, now=NOW)
    _assert_raises(NotYetValid, "ERR_JWT_NOT_YET_VALID", jwt.verify, token, key, now=NOW, leeway=9)
    assert jwt.verify(token, key, now=NOW, leeway=10)
    assert jwt.verify(token, key, now=NOW + 10)


def test_iat_in_future_rejected(key: Key) -> None:
    token = jwt.sign({"exp": NOW + 1000, "iat": NOW + 60}, key)
    _assert_raises(InvalidClaim, "ERR_JWT_INVALID_IAT", jwt.verify, token, key, now=NOW)
    assert jwt.verify(token, key, now=NOW, leeway=60)


@pytest.mark.parametrize("exp", [True, False, "123", None, [NOW + 10], {"t": NOW + 10}])
def test_exp_not_a_number_rejected(key: Key, exp: object) -> None:
    token = _raw(key, {"exp": exp})
    _assert_raises(InvalidClaim, "ERR_JWT_INVALID_EXP", jwt.verify, token, key, now=NOW)


@pytest.mark.parametrize("name", ["nbf", "iat"])
def test_nbf_iat_not_a_number_rejected(key: Key, name: str) -> None:
    token = _raw(key, {"exp": NOW + 10, name: "0"})
    _assert_raises(InvalidClaim, f"ERR_JWT_INVALID_{name.upper()}", jwt.verify, token, key, now=NOW)


def test_issuer_mismatch_rejected(key: Key) -> None:
    token = jwt.sign({"exp": NOW + 10, "iss": "https://good.example"}, key)
    assert jwt.verify(token, key, now=NOW, issuer="https://good.example")
    _assert_raises(
        InvalidClaim,
        "ERR_JWT_INVALID_ISS",
        jwt.verify,
        token,
        key,
        now=NOW,
        issuer="https://evil.example",
    )
    # A prefix or substring of the expected issuer is not the issuer.
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_ISS", jwt.verify, token, key, now=NOW, issuer="https://good"
    )
    no_iss = jwt.sign({"exp": NOW + 10}, key)
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_ISS", jwt.verify, no_iss, key, now=NOW, issuer="x"
    )


def test_issuer_as_a_set(key: Key) -> None:
    token = jwt.sign({"exp": NOW + 10, "iss": "b"}, key)
    assert jwt.verify(token, key, now=NOW, issuer={"a", "b"})["iss"] == "b"
    assert jwt.verify(token, key, now=NOW, issuer=["a", "b"])["iss"] == "b"
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_ISS", jwt.verify, token, key, now=NOW, issuer={"a", "c"}
    )
    listy = _raw(key, {"exp": NOW + 10, "iss": ["b"]})
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_ISS", jwt.verify, listy, key, now=NOW, issuer={"a", "b"}
    )


def test_audience_string_and_list_match(key: Key) -> None:
    single = jwt.sign({"exp": NOW + 10, "aud": "api"}, key)
    many = jwt.sign({"exp": NOW + 10, "aud": ["web", "api"]}, key)
    for token in (single, many):
        assert jwt.verify(token, key, now=NOW, audience="api")
        assert jwt.verify(token, key, now=NOW, audience=["api", "other"])
        assert jwt.verify(token, key, now=NOW, audience={"api"})


def test_audience_mismatch_rejected(key: Key) -> None:
    single = jwt.sign({"exp": NOW + 10, "aud": "api"}, key)
    many = jwt.sign({"exp": NOW + 10, "aud": ["web", "mobile"]}, key)
    empty = jwt.sign({"exp": NOW + 10, "aud": []}, key)
    none = jwt.sign({"exp": NOW + 10}, key)
    for token in (single, many, empty, none):
        for audience in ("admin", ["admin", "billing"], "ap"):
            _assert_raises(
                InvalidClaim,
                "ERR_JWT_INVALID_AUD",
                jwt.verify,
                token,
                key,
                now=NOW,
                audience=audience,
            )


def test_token_with_aud_but_no_expected_audience_rejected(key: Key) -> None:
    for aud in ("api", ["api"], []):
        token = jwt.sign({"exp": NOW + 10, "aud": aud}, key)
        _assert_raises(InvalidClaim, "ERR_JWT_INVALID_AUD", jwt.verify, token, key, now=NOW)


def test_subject_mismatch_rejected(key: Key) -> None:
    token = jwt.sign({"exp": NOW + 10, "sub": "alice"}, key)
    assert jwt.verify(token, key, now=NOW, subject="alice")
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_SUB", jwt.verify, token, key, now=NOW, subject="bob"
    )
    no_sub = jwt.sign({"exp": NOW + 10}, key)
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_SUB", jwt.verify, no_sub, key, now=NOW, subject="alice"
    )


def test_typ_header_check_media_type_rules(key: Key) -> None:
    at = jwt.sign({"exp": NOW + 10}, key, header={"typ": "application/AT+JWT"})
    assert jwt.verify(at, key, now=NOW, typ="at+jwt")
    assert jwt.verify(at, key, now=NOW, typ="application/at+jwt")
    plain = jwt.sign({"exp": NOW + 10}, key)
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_TYP", jwt.verify, plain, key, now=NOW, typ="at+jwt"
    )
    untyped = jwt.sign({"exp": NOW + 10}, key, header={"typ": None})
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_TYP", jwt.verify, untyped, key, now=NOW, typ="at+jwt"
    )


def test_max_age_against_iat(key: Key) -> None:
    token = jwt.sign({"exp": NOW + 10_000, "iat": NOW - 3600}, key)
    assert jwt.verify(token, key, now=NOW, max_age=3600)
    _assert_raises(
        ExpiredToken, "ERR_JWT_MAX_AGE_EXCEEDED", jwt.verify, token, key, now=NOW, max_age=3599
    )
    assert jwt.verify(token, key, now=NOW, max_age=3599, leeway=1)
    no_iat = jwt.sign({"exp": NOW + 10}, key)
    _assert_raises(
        InvalidClaim, "ERR_JWT_MISSING_IAT", jwt.verify, no_iat, key, now=NOW, max_age=60
    )


def test_claims_checked_only_after_signature(key: Key) -> None:
    # An expired token from someone else is a signature failure, not an expiry.
    other = Key.generate("ES256", kid=key.kid)
    token = jwt.sign({"exp": NOW - 10}, other)
    with pytest.raises(Exception) as info:
        jwt.verify(token, key.public(), now=NOW)
    assert info.value.code == "ERR_JWS_SIGNATURE_INVALID"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "payload", [b'{"exp":NaN}', b'{"exp":Infinity}', b'{"exp":1e400}', b'{"exp":1', b"\xff"]
)
def test_payload_not_strict_json_rejected(key: Key, payload: bytes) -> None:
    token = jws.sign(payload, key)
    _assert_raises(MalformedToken, "ERR_JWT_CLAIMS_INVALID", jwt.verify, token, key, now=NOW)


def test_duplicate_claim_names_use_lexically_last(key: Key) -> None:
    # RFC 7519 §4: reject, or use the lexically last member; never the first.
    token = jws.sign(b'{"exp":' + str(NOW + 10).encode() + b',"sub":"alice","sub":"bob"}', key)
    try:
        claims = jwt.verify(token, key, now=NOW)
    except MalformedToken:
        return
    assert claims["sub"] == "bob"
    _assert_raises(
        InvalidClaim, "ERR_JWT_INVALID_SUB", jwt.verify, token, key, now=NOW, subject="alice"
    )


# -- validate against the rules written out plainly ------------------------------------------

# Offsets around each boundary the policies below can draw (leeway 0, 0.5, 1 and 30; now on a
# second or half past it), as ints and as floats that binary represents exactly.
_OFFSETS = st.sampled_from([0, 1, 2, 29, 30, 31, 80]).flatmap(lambda d: st.sampled_from([d, -d]))
_DATES = st.one_of(
    _OFFSETS.map(lambda d: NOW + d),
    _OFFSETS.map(lambda d: NOW + d + 0.5),
    st.sampled_from([True, None, "1900000000", [NOW], float("inf")]),
)
_STRINGS = st.sampled_from(["a", "b", ["a"], ["b", "a"], [], 7, None])


def _spelled_out(claims: dict[str, Any], policy: dict[str, Any]) -> str | None:
    """The error code the claims rules give, or None: one rule after another, in order."""
    now, leeway = policy["now"], policy["leeway"]
    require = policy["require"]
    for name in (require,) if isinstance(require, str) else require:
        if name not in claims:
            return f"ERR_JWT_MISSING_{name.upper()}"
    dates = {}
    for name in ("exp", "nbf", "iat"):
        if name in claims:
            value = claims[name]
            if type(value) not in (int, float) or not math.isfinite(value):
                return f"ERR_JWT_INVALID_{name.upper()}"
            dates[name] = value
        if name == "exp" and "exp" in dates and now >= dates["exp"] + leeway:
            return "ERR_JWT_EXPIRED"
        if name == "nbf" and "nbf" in dates and now + leeway < dates["nbf"]:
            return "ERR_JWT_NOT_YET_VALID"
    if "iat" in dates and dates["iat"] > now + leeway:
        return "ERR_JWT_INVALID_IAT"
    if policy["max_age"] is not None:
        if "iat" not in dates:
            return "ERR_JWT_MISSING_IAT"
        if now - dates["iat"] > policy["max_age"] + leeway:
            return "ERR_JWT_MAX_AGE_EXCEEDED"

    def matches(value: Any, expected: Any) -> bool:
        return value == expected if type(expected) is str else value in expected

    issuer, audience = policy["issuer"], policy["audience"]
    if issuer is not None and not (
        type(claims.get("iss")) is str and matches(claims["iss"], issuer)
    ):
        return "ERR_JWT_INVALID_ISS"
    if audience is None:
        if "aud" in claims:
            return "ERR_JWT_INVALID_AUD"
    else:
        aud = claims.get("aud")
        found = aud if type(aud) is list else [aud]
        if not any(type(item) is str and matches(item, audience) for item in found):
            return "ERR_JWT_INVALID_AUD"
    if policy["subject"] is not None and claims.get("sub") != policy["subject"]:
        return "ERR_JWT_INVALID_SUB"
    return None


@settings(max_examples=3000, deadline=None)
@given(
    claims=st.fixed_dictionaries(
        {},
        optional={
            "exp": _DATES,
            "nbf": _DATES,
            "iat": _DATES,
            "iss": _STRINGS,
            "aud": _STRINGS,
            "sub": _STRINGS,
        },
    ),
    policy=st.fixed_dictionaries(
        {
            "now": st.sampled_from([NOW, NOW + 0.5]),
            "leeway": st.sampled_from([0, 1, 30, 0.5]),
            "issuer": st.sampled_from([None, "a", ("a", "b")]),
            "audience": st.sampled_from([None, "a", ["b", "a"], {"b"}]),
            "subject": st.sampled_from([None, "a"]),
            "max_age": st.sampled_from([None, 0, 50]),
            "require": st.sampled_from(
                [REQUIRE_EXP, ("exp",), ["exp"], "exp", (), ("iat",), ("exp", "sub"), "sub"]
            ),
        }
    ),
)
def test_validate_follows_the_rules_in_order(
    claims: dict[str, Any], policy: dict[str, Any]
) -> None:
    # The default ("exp",) takes a shortcut past the loop over required names; ("exp",),
    # ["exp"] and "exp" take the loop: all must give the same answers.
    expected = _spelled_out(claims, policy)
    try:
        validate(claims, **policy)
    except JoseError as exc:
        assert exc.code == expected, (claims, policy, exc)
    else:
        assert expected is None, (claims, policy)
