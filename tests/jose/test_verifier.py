"""Verifier rules: the cache never outlives a token's validity, revocation, boundedness."""

from __future__ import annotations

import pytest
from _assertions import assert_raises_code as _assert_raises

from jotkit import (
    ExpiredToken,
    InvalidClaim,
    InvalidSignature,
    Key,
    MalformedToken,
    NotYetValid,
    RevokedToken,
    Verifier,
    jwt,
)

NOW = 1_900_000_000


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Revocations:
    def __init__(self) -> None:
        self.calls = 0
        self.revoked = False

    def __call__(self, claims: object) -> bool:
        self.calls += 1
        return self.revoked


@pytest.fixture(scope="module")
def key() -> Key:
    return Key.generate("ES256")


def test_cache_hit_returns_same_claims_and_runs_revocation_hook_every_call(key: Key) -> None:
    hook = Revocations()
    v = Verifier(key.public(), clock=Clock(), is_revoked=hook)
    token = jwt.sign({"exp": NOW + 60, "sub": "u"}, key)
    first = v.verify(token)
    assert token in v._cache
    second = v.verify(token)
    assert first == second == {"exp": NOW + 60, "sub": "u"}
    assert first is not second
    assert hook.calls == 2


def test_cached_token_expires_with_the_clock(key: Key) -> None:
    clock = Clock()
    hook = Revocations()
    v = Verifier(key.public(), clock=clock, is_revoked=hook)
    token = jwt.sign({"exp": NOW + 60}, key)
    v.verify(token)
    clock.now = NOW + 59
    assert v.verify(token)
    clock.now = NOW + 60
    _assert_raises(ExpiredToken, "ERR_JWT_EXPIRED", v.verify, token)
    _assert_raises(ExpiredToken, "ERR_JWT_EXPIRED", v.verify, token)
    assert token not in v._cache


def test_cached_token_expiry_respects_leeway(key: Key) -> None:
    clock = Clock()
    v = Verifier(key.public(), clock=clock, leeway=30)
    token = jwt.sign({"exp": NOW + 60}, key)
    v.verify(token)
    clock.now = NOW + 89
    assert v.verify(token)
    clock.now = NOW + 90
    _assert_raises(ExpiredToken, "ERR_JWT_EXPIRED", v.verify, token)


def test_cached_token_max_age_enforced_with_the_clock(key: Key) -> None:
    clock = Clock()
    v = Verifier(key.public(), clock=clock, max_age=100)
    token = jwt.sign({"exp": NOW + 10_000, "iat": NOW}, key)
    v.verify(token)
    clock.now = NOW + 100
    assert v.verify(token)
    clock.now = NOW + 101
    _assert_raises(ExpiredToken, "ERR_JWT_MAX_AGE_EXCEEDED", v.verify, token)


def test_nbf_token_not_cached_as_valid_before_nbf(key: Key) -> None:
    clock = Clock()
    v = Verifier(key.public(), clock=clock)
    token = jwt.sign({"exp": NOW + 100, "nbf": NOW + 10}, key)
    _assert_raises(NotYetValid, "ERR_JWT_NOT_YET_VALID", v.verify, token)
    assert token not in v._cache
    clock.now = NOW + 10
    assert v.verify(token)


def test_cached_token_revoked_when_hook_flips(key: Key) -> None:
    hook = Revocations()
    v = Verifier(key.public(), clock=Clock(), is_revoked=hook)
    token = jwt.sign({"exp": NOW + 60, "jti": "1"}, key)
    v.verify(token)
    assert token in v._cache
    hook.revoked = True
    _assert_raises(RevokedToken, "ERR_JWT_REVOKED", v.verify, token)
    _assert_raises(RevokedToken, "ERR_JWT_REVOKED", v.verify, token)
    assert hook.calls == 3
    hook.revoked = False
    assert v.verify(token)


def test_check_applies_the_clock_and_revocation_of_verify_to_a_cached_token(key: Key) -> None:
    clock, hook = Clock(), Revocations()
    v = Verifier(key.public(), clock=clock, is_revoked=hook)
    token = jwt.sign({"exp": NOW + 60, "jti": "1", "cnf": {"jkt": "x"}}, key)
    assert v.check(token) is None  # first sight: verified in full, then cached
    assert v.check(token) is None
    assert hook.calls == 2
    hook.revoked = True
    _assert_raises(RevokedToken, "ERR_JWT_REVOKED", v.check, token)
    hook.revoked = False
    clock.now = NOW + 60
    _assert_raises(ExpiredToken, "ERR_JWT_EXPIRED", v.check, token)
    assert token not in v._cache
    _assert_raises(InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", v.check, token[:-4] + "AAAA")


def test_revoked_token_is_rejected_on_first_sight_and_not_cached(key: Key) -> None:
    hook = Revocations()
    hook.revoked = True
    v = Verifier(key.public(), clock=Clock(), is_revoked=hook)
    token = jwt.sign({"exp": NOW + 60}, key)
    _assert_raises(RevokedToken, "ERR_JWT_REVOKED", v.verify, token)
    assert token not in v._cache


def test_cache_is_bounded(key: Key) -> None:
    v = Verifier(key.public(), clock=Clock(), cache_size=2)
    tokens = [jwt.sign({"exp": NOW + 60, "n": n}, key) for n in range(5)]
    for token in tokens:
        v.verify(token)
        assert len(v._cache) <= 2
    for token in tokens:
        assert v.verify(token)["n"] == tokens.index(token)
        assert len(v._cache) <= 2


def test_cache_disabled_with_size_zero(key: Key) -> None:
    v = Verifier(key.public(), clock=Clock(), cache_size=0)
    v.verify(jwt.sign({"exp": NOW + 60}, key))
    assert len(v._cache) == 0


def test_cache_hit_claims_isolated_from_caller_mutation(key: Key) -> None:
    v = Verifier(key.public(), clock=Clock(), audience="api")
    token = jwt.sign({"exp": NOW + 60, "roles": ["user"], "aud": ["api"], "sub": "u"}, key)
    first = v.verify(token)
    first["sub"] = "admin"
    first["roles"].append("admin")
    first["aud"].append("other")
    second = v.verify(token)
    assert second == {"exp": NOW + 60, "roles": ["user"], "aud": ["api"], "sub": "u"}


def test_forged_token_never_enters_cache(key: Key) -> None:
    v = Verifier(key.public(), clock=Clock())
    forged = jwt.sign({"exp": NOW + 60}, Key.generate("ES256", kid=key.kid))
    _assert_raises(InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", v.verify, forged)
    assert len(v._cache) == 0
    _assert_raises(InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", v.verify, forged)


def test_key_rotation_empties_cache(key: Key) -> None:
    v = Verifier(key.public(), clock=Clock())
    token = jwt.sign({"exp": NOW + 60}, key)
    v.verify(token)
    v.keys = Key.generate("ES256", kid=key.kid).public()
    assert len(v._cache) == 0
    _assert_raises(InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", v.verify, token)


def test_verifier_policy_applied(key: Key) -> None:
    v = Verifier(key.public(), clock=Clock(), issuer={"a", "b"}, audience="api", algorithms="ES256")
    ok = jwt.sign({"exp": NOW + 60, "iss": "a", "aud": "api"}, key)
    assert v.verify(ok)["iss"] == "a"
    bad_iss = jwt.sign({"exp": NOW + 60, "iss": "c", "aud": "api"}, key)
    _assert_raises(InvalidClaim, "ERR_JWT_INVALID_ISS", v.verify, bad_iss)
    bad_aud = jwt.sign({"exp": NOW + 60, "iss": "a", "aud": "web"}, key)
    _assert_raises(InvalidClaim, "ERR_JWT_INVALID_AUD", v.verify, bad_aud)


@pytest.mark.parametrize("token", [None, 123, ["a.b.c"], bytearray(b"a.b.c"), {"x": 1}])
def test_verifier_rejects_non_string_tokens(key: Key, token: object) -> None:
    v = Verifier(key.public(), clock=Clock())
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", v.verify, token)


def test_bytes_token_verifies_like_str(key: Key) -> None:
    v = Verifier(key.public(), clock=Clock())
    token = jwt.sign({"exp": NOW + 60, "sub": "u"}, key)
    assert v.verify(token.encode())["sub"] == "u"
    assert v.verify(token.encode())["sub"] == "u"


def test_policy_is_read_only_so_no_stale_cached_verdict(key: Key) -> None:
    # A token cached under one policy must never pass another without being checked
    # against it: the policy cannot change under a Verifier (a new policy = a new Verifier).
    v = Verifier(key.public(), clock=Clock(), audience="api")
    token = jwt.sign({"exp": NOW + 60, "aud": "api"}, key)
    v.verify(token)
    assert v.policy.audience == "api"
    with pytest.raises(AttributeError):
        v.audience = "billing"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        v.policy.audience = "billing"  # type: ignore[misc]
    strict = Verifier(key.public(), clock=Clock(), audience="billing")
    _assert_raises(InvalidClaim, "ERR_JWT_INVALID_AUD", strict.verify, token)


def test_hook_raising_on_cache_hit_surfaces_as_jose_error(key: Key) -> None:
    calls = []

    def flaky(claims: object) -> bool:
        calls.append(claims)
        if len(calls) > 1:
            raise ValueError("feed exploded")
        return False

    v = Verifier(key.public(), clock=Clock(), is_revoked=flaky)
    token = jwt.sign({"exp": NOW + 60}, key)
    v.verify(token)
    with pytest.raises(MalformedToken):
        v.verify(token)
