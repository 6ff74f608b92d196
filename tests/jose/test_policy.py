"""Policy rules: validated when built (one failing case per rule), and keyword calls verify
exactly as the Policy they build."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import pytest
from _assertions import assert_raises_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jotkit import ExpiredToken, InvalidClaim, InvalidPolicy, JoseError, Key, Policy, Verifier, jwt
from jotkit.jose.claims import REQUIRE_EXP

NOW = 1_900_000_000
HS = Key.from_secret(b"s" * 32, alg="HS256")
ES = Key.generate("ES256")


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"algorithms": []}, "ERR_POLICY_ALGORITHMS"),  # nothing could ever verify
        ({"algorithms": ["HS265"]}, "ERR_POLICY_ALGORITHMS"),  # misspelt
        ({"algorithms": ["none"]}, "ERR_POLICY_ALGORITHMS"),
        ({"algorithms": 256}, "ERR_POLICY_ALGORITHMS"),
        ({"issuer": ""}, "ERR_POLICY_ISSUER"),
        ({"issuer": []}, "ERR_POLICY_ISSUER"),
        ({"issuer": ["a", 1]}, "ERR_POLICY_ISSUER"),
        ({"audience": b"api"}, "ERR_POLICY_AUDIENCE"),  # bytes are not a set of names
        ({"audience": 7}, "ERR_POLICY_AUDIENCE"),
        ({"audience": set()}, "ERR_POLICY_AUDIENCE"),
        ({"subject": 12}, "ERR_POLICY_SUBJECT"),
        ({"typ": ""}, "ERR_POLICY_TYP"),
        ({"leeway": -1}, "ERR_POLICY_LEEWAY"),
        ({"leeway": float("nan")}, "ERR_POLICY_LEEWAY"),
        ({"leeway": "30"}, "ERR_POLICY_LEEWAY"),
        ({"max_age": -5}, "ERR_POLICY_MAX_AGE"),
        ({"max_age": float("inf")}, "ERR_POLICY_MAX_AGE"),
        ({"require": "exp"}, "ERR_POLICY_REQUIRE"),  # "exp" is not the claims e, x and p
        ({"require": ["exp", 3]}, "ERR_POLICY_REQUIRE"),
        ({"require": None}, "ERR_POLICY_REQUIRE"),
        ({"max_token_bytes": 0}, "ERR_POLICY_MAX_TOKEN_BYTES"),
        ({"max_token_bytes": 8192.0}, "ERR_POLICY_MAX_TOKEN_BYTES"),
        ({"clock": 1_900_000_000}, "ERR_POLICY_CLOCK"),
    ],
)
def test_policy_is_validated_when_built(options: dict[str, Any], code: str) -> None:
    assert_raises_code(InvalidPolicy, code, Policy, **options)


def test_invalid_policy_is_a_value_error_and_a_jose_error() -> None:
    with pytest.raises(ValueError, match="did you mean 'HS256'"):
        Policy(algorithms=["hs256"])
    assert issubclass(InvalidPolicy, JoseError)


def test_misspelt_field_fails_when_built() -> None:
    with pytest.raises(TypeError, match="audeince"):
        Policy(audeince="api")  # type: ignore[call-arg]


def test_policy_is_frozen_normalised_and_hashable() -> None:
    names = ["a", "b"]
    policy = Policy(algorithms="ES256", issuer=names, audience=("api",), require=["exp"])
    names.append("c")  # the caller's list changing later changes nothing
    assert policy.algorithms == frozenset({"ES256"})
    assert policy.issuer == frozenset({"a", "b"})
    assert policy.audience == frozenset({"api"})
    assert policy.require is REQUIRE_EXP  # the shared tuple the claims check tests by identity
    assert hash(policy) == hash(Policy(algorithms=["ES256"], issuer={"b", "a"}, audience={"api"}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.leeway = 5  # type: ignore[misc]
    assert dataclasses.replace(policy, leeway=5).leeway == 5
    with pytest.raises(InvalidPolicy):
        dataclasses.replace(policy, leeway=-5)


def test_access_token_policy_has_the_rfc9068_defaults() -> None:
    policy = Policy.for_access_tokens(issuer="https://as", audience="api")
    assert (policy.typ, policy.require) == ("at+jwt", ("exp", "iat", "sub", "jti"))


def test_policy_and_keywords_together_are_refused() -> None:
    token = jwt.sign({"exp": NOW + 60}, HS)
    with pytest.raises(TypeError, match="not both"):
        jwt.verify(token, HS, Policy(), issuer="x", now=NOW)
    with pytest.raises(TypeError, match="not both"):
        Verifier(HS, Policy(), audience="api")


def test_bad_keywords_fail_like_the_policy_they_build() -> None:
    token = jwt.sign({"exp": NOW + 60}, HS)
    assert_raises_code(
        InvalidPolicy, "ERR_POLICY_LEEWAY", jwt.verify, token, HS, leeway=-1, now=NOW
    )
    assert_raises_code(InvalidPolicy, "ERR_POLICY_ALGORITHMS", Verifier, HS, algorithms=[])


def test_bare_string_require_keyword_still_works_with_a_deprecation_warning() -> None:
    token = jwt.sign({"exp": NOW + 60}, HS, allow_no_exp=True)
    with pytest.warns(DeprecationWarning, match=r"\('sub',\)"):
        assert_raises_code(
            InvalidClaim, "ERR_JWT_MISSING_SUB", jwt.verify, token, HS, require="sub", now=NOW
        )
    with pytest.warns(DeprecationWarning):
        assert Verifier(HS, require="sub").policy.require == ("sub",)


def test_a_list_keyword_mutated_between_calls_is_read_again() -> None:
    token = jwt.sign({"exp": NOW + 60, "aud": "b"}, HS)
    audience = ["a"]
    with pytest.raises(JoseError):
        jwt.verify(token, HS, audience=audience, now=NOW)
    audience.append("b")
    assert jwt.verify(token, HS, audience=audience, now=NOW)["aud"] == "b"


def test_verifier_and_policy_clock() -> None:
    token = jwt.sign({"exp": NOW + 60}, HS)
    policy = Policy(clock=lambda: NOW + 120)
    assert_raises_code(ExpiredToken, "ERR_JWT_EXPIRED", jwt.verify, token, HS, policy)
    assert jwt.verify(token, HS, policy, now=NOW) == {"exp": NOW + 60}
    verifier = Verifier(HS, Policy(clock=lambda: NOW))
    assert verifier.verify(token) == {"exp": NOW + 60}
    assert verifier.policy.clock() == NOW


# -- keyword calls and policy calls give identical results ---------------------------------

_NAMES = st.sampled_from(["a", "b", "api", "https://as.example"])
_POLICIES = st.fixed_dictionaries(
    {},
    optional={
        "algorithms": st.sampled_from([["HS256"], ["ES256"], ("HS256", "ES256"), "HS256"]),
        "issuer": st.one_of(_NAMES, st.lists(_NAMES, min_size=1, max_size=2)),
        "audience": st.one_of(_NAMES, st.lists(_NAMES, min_size=1, max_size=2)),
        "subject": st.sampled_from(["u1", "u2"]),
        "typ": st.sampled_from(["JWT", "at+jwt", "application/at+jwt"]),
        "leeway": st.sampled_from([0, 5, 30.5, 120]),
        "max_age": st.sampled_from([10, 300, 4000]),
        "require": st.sampled_from([(), ("exp",), ["exp", "iat"], ("sub", "jti")]),
        "max_token_bytes": st.sampled_from([60, 8192]),
    },
)
_CLAIMS = st.fixed_dictionaries(
    {},
    optional={
        "iss": _NAMES,
        "aud": st.one_of(_NAMES, st.lists(_NAMES, min_size=1, max_size=2)),
        "sub": st.sampled_from(["u1", "u2"]),
        "jti": st.just("j1"),
        "exp": st.sampled_from([NOW - 60, NOW - 3, NOW + 1, NOW + 600]),
        "nbf": st.sampled_from([NOW - 60, NOW + 3, NOW + 60]),
        "iat": st.sampled_from([NOW - 3600, NOW - 200, NOW, NOW + 10]),
    },
)


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except JoseError as exc:
        return ("error", type(exc), exc.code, str(exc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    options=_POLICIES,
    claims=_CLAIMS,
    key=st.sampled_from([HS, ES]),
    typ=st.sampled_from(["JWT", "at+jwt"]),
)
def test_keywords_and_policy_give_identical_results(
    options: dict[str, Any], claims: dict[str, Any], key: Key, typ: str
) -> None:
    token = jwt.sign(claims, key, header={"typ": typ}, allow_no_exp=True)
    public = key if key.kty == "oct" else key.public()
    policy = Policy(**options, clock=lambda: NOW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these keywords is deprecated
        by_keywords = _outcome(lambda: jwt.verify(token, public, now=NOW, **options))
        by_policy = _outcome(lambda: jwt.verify(token, public, policy))
        by_verifier = _outcome(lambda: Verifier(public, policy).verify(token))
        by_verifier_keywords = _outcome(
            lambda: Verifier(public, clock=lambda: NOW, **options).verify(token)
        )
    assert by_keywords == by_policy == by_verifier == by_verifier_keywords
