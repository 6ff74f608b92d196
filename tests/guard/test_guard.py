"""Guard rules, one test each: token location (RFC 6750), policy, revocation, scope, answers."""

from __future__ import annotations

import time
from typing import Any

import pytest
from _issuer import make_token as _make_token

from jotkit import (
    ExpiredToken,
    InvalidClaim,
    InvalidPolicy,
    Key,
    KeyNotFound,
    Policy,
    RevokedToken,
)
from jotkit.guard import (
    BadAuthorization,
    Guard,
    InsufficientScope,
    MissingCredentials,
    Principal,
    bearer_token,
    challenge,
)
from jotkit.jose.dpop import DEFAULT_DPOP_ALGORITHMS
from jotkit.revocation import FeedStale, Revocation, RevocationSet, SetFull

ISSUER = "https://auth.example.test"
AUDIENCE = "jotkit"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> Key:
    return Key.generate("ES256", kid="k1")


def make_token(key: Key, typ: str = "at+jwt", **overrides: Any) -> str:
    return _make_token(key, ISSUER, typ, **overrides)


def make_guard(key: Key, **options: Any) -> Guard:
    return Guard(issuer=ISSUER, audience=AUDIENCE, keys=key.public(), **options)


# -- RFC 6750 §2.1 header parsing ----------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert bearer_token(f"{scheme} abc.def.ghi") == "abc.def.ghi"


def test_bearer_token_may_end_in_padding() -> None:
    assert bearer_token("Bearer a-b_c~d+e/f.g==") == "a-b_c~d+e/f.g=="


@pytest.mark.parametrize(
    "header",
    [
        "Bearer  abc",  # two spaces
        "Bearer\tabc",  # a tab is not SP
        "Bearer abc ",  # trailing space
        " Bearer abc",  # leading space
        "Bearer abc def",  # two tokens
        "Bearer abc,def",  # comma is not in b64token
        "Bearer a=b",  # = only at the end
        "Bearer =abc",
        "Bearer abc\n",  # a newline must not slip through a $ anchor
        "Bearer abc\r\nX-Injected: 1",
        "Bearer",  # no token
        "Bearer ",
        "Bearer é",
    ],
)
def test_malformed_bearer_header_is_invalid_request(header: str) -> None:
    with pytest.raises(BadAuthorization) as info:
        bearer_token(header)
    assert info.value.code == "ERR_GUARD_BAD_AUTHORIZATION"
    assert challenge(info.value).status == 400


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Token abc", "Bearerabc"])
def test_absent_or_other_scheme_is_missing_credentials(header: str | None) -> None:
    with pytest.raises(MissingCredentials):
        bearer_token(header)


def test_cookie_is_used_only_when_configured(key: Key) -> None:
    token = make_token(key)
    with pytest.raises(MissingCredentials):
        make_guard(key).authenticate(None, {"access_token": token})
    guard = make_guard(key, cookie_name="access_token")
    assert guard.authenticate(None, {"access_token": token}).sub == "user-1"


def test_authorization_header_wins_over_cookie(key: Key) -> None:
    guard = make_guard(key, cookie_name="access_token")
    with pytest.raises(BadAuthorization):
        guard.authenticate("Bearer  two-spaces", {"access_token": make_token(key)})


def test_malformed_cookie_token_is_invalid_request(key: Key) -> None:
    guard = make_guard(key, cookie_name="access_token")
    with pytest.raises(BadAuthorization):
        guard.authenticate(None, {"access_token": "a b"})


# -- the verification policy ---------------------------------------------------------------


def test_valid_token_gives_claims(key: Key) -> None:
    token = make_token(key)
    claims = make_guard(key).authenticate(f"Bearer {token}")
    assert isinstance(claims, Principal)
    assert (claims.sub, claims.sid, claims.client_id) == ("user-1", "session-1", "web")
    assert claims.scope == frozenset({"read", "write"})
    assert claims.raw["iss"] == ISSUER
    with pytest.raises(TypeError):
        claims.raw["sub"] = "someone else"  # type: ignore[index]


def test_rejects_wrong_issuer(key: Key) -> None:
    with pytest.raises(InvalidClaim) as info:
        make_guard(key).verify(make_token(key, iss="https://evil.example.test"))
    assert info.value.claim == "iss"


def test_rejects_wrong_audience(key: Key) -> None:
    with pytest.raises(InvalidClaim) as info:
        make_guard(key).verify(make_token(key, aud="another-api"))
    assert info.value.claim == "aud"


def test_rejects_id_token_typ(key: Key) -> None:
    with pytest.raises(InvalidClaim) as info:
        make_guard(key).verify(make_token(key, typ="JWT"))
    assert info.value.claim == "typ"


def test_keywords_build_the_access_token_policy(key: Key) -> None:
    assert make_guard(key).policy == Policy.for_access_tokens(issuer=ISSUER, audience=AUDIENCE)
    assert make_guard(key, typ=None).policy.typ is None  # None still turns the typ check off


def test_guard_with_a_policy_verifies_as_with_keywords(key: Key) -> None:
    policy = Policy.for_access_tokens(issuer=ISSUER, audience=AUDIENCE, leeway=5)
    guard = Guard(keys=key.public(), policy=policy)
    assert guard.policy is policy and guard.issuer == ISSUER
    assert guard.authenticate(f"Bearer {make_token(key)}").sub == "user-1"
    for bad in (make_token(key, typ="JWT"), make_token(key, jti=None), make_token(key, aud="x")):
        with pytest.raises(InvalidClaim) as by_policy:
            guard.verify(bad)
        with pytest.raises(InvalidClaim) as by_keywords:
            make_guard(key, leeway=5).verify(bad)
        assert by_policy.value.code == by_keywords.value.code


def test_guard_refuses_a_policy_and_keywords_together(key: Key) -> None:
    policy = Policy.for_access_tokens(issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(TypeError, match="not both"):
        Guard(keys=key.public(), policy=policy, leeway=30)
    with pytest.raises(TypeError, match="issuer and audience"):
        Guard(keys=key.public(), audience=AUDIENCE)


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        (Policy(issuer=ISSUER), "ERR_POLICY_AUDIENCE"),
        (Policy(issuer=[ISSUER, "https://other"], audience=AUDIENCE), "ERR_POLICY_ISSUER"),
        (Policy(audience=AUDIENCE), "ERR_POLICY_ISSUER"),
    ],
)
def test_guard_policy_needs_one_issuer_and_an_audience(key: Key, policy: Policy, code: str) -> None:
    with pytest.raises(InvalidPolicy) as info:
        Guard(keys=key.public(), policy=policy)
    assert info.value.code == code


def test_guard_keywords_that_make_no_policy_fail_when_built(key: Key) -> None:
    with pytest.raises(InvalidPolicy) as info:
        make_guard(key, algorithms=["ES265"])
    assert info.value.code == "ERR_POLICY_ALGORITHMS"


def test_rejects_expired_token_even_when_cached(key: Key) -> None:
    clock = Clock(time.time())
    guard = make_guard(key, clock=clock)
    token = make_token(key)
    guard.verify(token)
    clock.now += 301
    with pytest.raises(ExpiredToken):
        guard.verify(token)


def test_rejects_token_without_jti(key: Key) -> None:
    with pytest.raises(InvalidClaim):
        make_guard(key).verify(make_token(key, jti=None))


def test_rejects_non_string_scope(key: Key) -> None:
    with pytest.raises(InvalidClaim) as info:
        make_guard(key).verify(make_token(key, scope=["read"]))
    assert info.value.claim == "scope"


def test_rejects_token_signed_by_another_key(key: Key) -> None:
    other = Key.generate("ES256", kid="k1")
    with pytest.raises(Exception) as info:
        make_guard(key).verify(make_token(other))
    assert info.value.code == "ERR_JWS_SIGNATURE_INVALID"  # type: ignore[attr-defined]


def test_rejects_unknown_kid_with_fixed_keys(key: Key) -> None:
    other = Key.generate("ES256", kid="k2")
    with pytest.raises(KeyNotFound):
        make_guard(key).verify(make_token(other))


# -- revocation ------------------------------------------------------------------------------


def test_revoked_jti_is_refused_even_when_cached(key: Key) -> None:
    revocations = RevocationSet()
    guard = make_guard(key, revocation=revocations)
    token = make_token(key)
    claims = guard.verify(token)
    revocations.add(Revocation("jti", claims.jti or "", time.time() + 600))
    with pytest.raises(RevokedToken):
        guard.verify(token)


def test_revoked_session_is_refused(key: Key) -> None:
    revocations = RevocationSet([Revocation("sid", "session-1", time.time() + 600)])
    with pytest.raises(RevokedToken):
        make_guard(key, revocation=revocations).verify(make_token(key))


def test_user_watermark_refuses_older_tokens_only(key: Key) -> None:
    now = int(time.time())
    revocations = RevocationSet([Revocation("sub", "user-1", now + 600, not_before=now)])
    guard = make_guard(key, revocation=revocations)
    with pytest.raises(RevokedToken):
        guard.verify(make_token(key, iat=now - 10))
    assert guard.verify(make_token(key, iat=now)).sub == "user-1"


def test_a_feed_not_loaded_yet_fails_closed(key: Key) -> None:
    # A restarted verifier must not accept tokens revoked while it was down.
    revocations = RevocationSet(max_staleness_seconds=30)
    guard = make_guard(key, revocation=revocations)
    with pytest.raises(FeedStale, match="not loaded yet") as info:
        guard.verify(make_token(key))
    assert guard.challenge(info.value).status == 503
    revocations.heard()  # what a transport does once its first catch-up is applied
    assert guard.verify(make_token(key)).sub == "user-1"


def test_stale_feed_fails_closed_by_default(key: Key) -> None:
    monotonic = Clock(1000.0)
    revocations = RevocationSet(max_staleness_seconds=30, monotonic=monotonic)
    revocations.heard()
    guard = make_guard(key, revocation=revocations)
    token = make_token(key)
    guard.verify(token)
    monotonic.now += 31
    with pytest.raises(FeedStale) as info:
        guard.verify(token)
    assert guard.challenge(info.value).status == 503
    revocations.heard()
    assert guard.verify(token).sub == "user-1"


def test_a_full_revocation_set_is_503_until_the_entry_not_held_expires(key: Key) -> None:
    clock = Clock(time.time())
    revocations = RevocationSet(max_entries=1, fail_open=True, clock=clock)
    revocations.add(Revocation("sid", "held", clock.now + 60))
    revocations.add(Revocation("sid", "not-held", clock.now + 120))
    guard = make_guard(key, revocation=revocations)
    with pytest.raises(SetFull) as info:
        guard.verify(make_token(key))
    answer = guard.challenge(info.value)
    assert answer.status == 503 and answer.body["code"] == "ERR_REVOCATION_SET_FULL"
    assert answer.headers["Retry-After"]
    clock.now += 121
    assert guard.verify(make_token(key)).sub == "user-1"


def test_stale_feed_fail_open_accepts(key: Key) -> None:
    monotonic = Clock(1000.0)
    revocations = RevocationSet(max_staleness_seconds=30, fail_open=True, monotonic=monotonic)
    monotonic.now += 3600
    assert make_guard(key, revocation=revocations).verify(make_token(key)).sub == "user-1"


# -- scope and the HTTP answers --------------------------------------------------------------


def test_insufficient_scope_is_403_naming_the_scope(key: Key) -> None:
    guard = make_guard(key)
    with pytest.raises(InsufficientScope) as info:
        guard.authenticate(f"Bearer {make_token(key)}", scopes=["read", "admin"])
    answer = guard.challenge(info.value)
    assert answer.status == 403
    assert answer.www_authenticate is not None
    assert 'error="insufficient_scope"' in answer.www_authenticate
    assert 'scope="admin read"' in answer.www_authenticate
    assert answer.body["error"] == "insufficient_scope"


def test_granted_scopes_pass(key: Key) -> None:
    claims = make_guard(key).authenticate(f"Bearer {make_token(key)}", scopes=["read"])
    assert "read" in claims.scope


def test_missing_credentials_challenge_has_no_error(key: Key) -> None:
    answer = make_guard(key).challenge(MissingCredentials("none"))
    assert answer.status == 401
    assert answer.www_authenticate == (
        f'Bearer realm="{ISSUER}", '
        f'DPoP realm="{ISSUER}", algs="{" ".join(DEFAULT_DPOP_ALGORITHMS)}"'
    )
    assert answer.body["error"] == "missing_token"


def test_invalid_token_challenge(key: Key) -> None:
    guard = make_guard(key)
    with pytest.raises(ExpiredToken) as info:
        guard.verify(make_token(key, exp=int(time.time()) - 5))
    answer = guard.challenge(info.value)
    assert answer.status == 401
    assert answer.www_authenticate is not None
    assert answer.www_authenticate.startswith(f'Bearer realm="{ISSUER}", error="invalid_token"')
    assert answer.body["code"] == "ERR_JWT_EXPIRED"
    assert answer.headers["Cache-Control"] == "no-store"


def test_challenge_never_lets_token_text_break_the_header(key: Key) -> None:
    forged_kid = 'x"\r\nSet-Cookie: a=b\\'
    other = Key.generate("ES256", kid=forged_kid)
    with pytest.raises(KeyNotFound) as info:
        make_guard(key).verify(make_token(other))
    answer = challenge(info.value)
    assert answer.www_authenticate is not None
    assert "\r" not in answer.www_authenticate and "\n" not in answer.www_authenticate
    inner = answer.www_authenticate.split('error_description="', 1)[1]
    assert inner.count('"') == 1 and "\\" not in inner


def test_challenge_body_keeps_the_description_as_written(key: Key) -> None:
    # Only the WWW-Authenticate header needs quotes replaced; JSON escapes them itself.
    other = Key.generate("ES256", kid='my "blue" key')
    with pytest.raises(KeyNotFound) as info:
        make_guard(key).verify(make_token(other))
    answer = challenge(info.value)
    assert '"blue"' in answer.body["error_description"]
    assert answer.www_authenticate is not None and '"blue"' not in answer.www_authenticate
