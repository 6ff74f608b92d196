"""Remote JWKS against a real local HTTP server: caching, unknown kids, outages, discovery."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import orjson
import pytest
from _issuer import IssuerServer, make_token

from jotkit import JoseError, Key, KeyNotFound
from jotkit.guard import Guard, JWKSUnavailable, RemoteJWKS


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a background refresh (a generous bound: the machine is shared)."""
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def remote_guard(server: IssuerServer, clock: Monotonic, **options: float) -> Guard:
    jwks = RemoteJWKS(server.url + "/.well-known/jwks.json", monotonic=clock, **options)
    return Guard(issuer=server.url, audience="jotkit", jwks=jwks)


def test_steady_state_makes_no_network_call(issuer_server: IssuerServer) -> None:
    guard = remote_guard(issuer_server, Monotonic())
    key = issuer_server.state.keys[0]
    tokens = [make_token(key, issuer_server.url) for _ in range(20)]
    for _ in range(10):
        for token in tokens:
            assert guard.verify(token).sub == "user-1"
    assert issuer_server.jwks_hits() == 1


def test_set_is_refetched_in_background_after_max_age(issuer_server: IssuerServer) -> None:
    clock = Monotonic()
    guard = remote_guard(issuer_server, clock)
    token = make_token(issuer_server.state.keys[0], issuer_server.url)
    guard.verify(token)
    clock.now += 119  # max-age=120
    guard.verify(token)
    assert issuer_server.jwks_hits() == 1
    clock.now += 2
    guard.verify(token)  # answered from the held set; the refresh runs beside it
    wait_until(lambda: issuer_server.jwks_hits() == 2, "the background refresh")


@pytest.mark.parametrize(
    ("cache_control", "fresh_seconds"),
    [("max-age=1", 30), ("no-store", 30), ("public, max-age=999999", 3600), ("", 300)],
)
def test_max_age_is_clamped(
    issuer_server: IssuerServer, cache_control: str, fresh_seconds: float
) -> None:
    issuer_server.state.cache_control = cache_control
    clock = Monotonic()
    jwks = RemoteJWKS(issuer_server.url + "/.well-known/jwks.json", monotonic=clock)
    jwks.refresh()
    assert jwks.seconds_until_refresh == fresh_seconds


def test_unknown_kid_triggers_one_refetch_then_verifies(issuer_server: IssuerServer) -> None:
    guard = remote_guard(issuer_server, Monotonic())
    guard.verify(make_token(issuer_server.state.keys[0], issuer_server.url))
    rotated = Key.generate("ES256", kid="k2")
    issuer_server.state.keys.append(rotated)
    assert guard.verify(make_token(rotated, issuer_server.url)).sub == "user-1"
    assert issuer_server.jwks_hits() == 2


def test_forged_kid_flood_costs_one_refetch_per_cooldown(issuer_server: IssuerServer) -> None:
    clock = Monotonic()
    guard = remote_guard(issuer_server, clock, unknown_kid_cooldown_seconds=30)
    guard.verify(make_token(issuer_server.state.keys[0], issuer_server.url))
    forged = [
        make_token(Key.generate("ES256", kid=uuid.uuid4().hex), issuer_server.url)
        for _ in range(20)
    ]
    errors: list[BaseException] = []

    def attack() -> None:
        for token in forged:
            try:
                guard.verify(token)
            except KeyNotFound as exc:
                errors.append(exc)

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 80
    assert issuer_server.jwks_hits() == 2
    clock.now += 31
    with pytest.raises(KeyNotFound):
        guard.verify(forged[0])
    assert issuer_server.jwks_hits() == 3


def test_issuer_down_keeps_last_good_set_until_stale_limit(issuer_server: IssuerServer) -> None:
    clock = Monotonic()
    guard = remote_guard(issuer_server, clock, max_stale_seconds=600)
    token = make_token(issuer_server.state.keys[0], issuer_server.url)
    guard.verify(token)
    issuer_server.stop()
    clock.now += 121
    assert guard.verify(token).sub == "user-1"
    jwks = guard.jwks
    assert jwks is not None
    wait_until(lambda: jwks.last_error is not None, "the failed background refresh")
    clock.now += 500
    assert guard.verify(token).sub == "user-1"
    clock.now += 101  # 120 fresh + 600 stale are over
    with pytest.raises(JWKSUnavailable) as info:
        guard.verify(token)
    assert info.value.code == "ERR_JWKS_UNAVAILABLE"
    assert guard.challenge(info.value).status == 503


def test_error_answer_keeps_last_good_set(issuer_server: IssuerServer) -> None:
    clock = Monotonic()
    guard = remote_guard(issuer_server, clock)
    token = make_token(issuer_server.state.keys[0], issuer_server.url)
    guard.verify(token)
    issuer_server.state.status = 500
    clock.now += 121
    guard.verify(token)
    jwks = guard.jwks
    assert jwks is not None
    wait_until(lambda: jwks.last_error is not None, "the failed background refresh")
    assert "HTTP 500" in (jwks.last_error or "")
    assert guard.verify(token).sub == "user-1"


def test_never_loaded_and_issuer_down_is_unavailable_not_invalid(
    issuer_server: IssuerServer,
) -> None:
    key = issuer_server.state.keys[0]
    guard = remote_guard(issuer_server, Monotonic())
    issuer_server.stop()
    with pytest.raises(JWKSUnavailable):
        guard.verify(make_token(key, issuer_server.url))


def test_key_removed_from_set_stops_verifying_cached_tokens(issuer_server: IssuerServer) -> None:
    clock = Monotonic()
    guard = remote_guard(issuer_server, clock)
    old = issuer_server.state.keys[0]
    token = make_token(old, issuer_server.url)
    guard.verify(token)
    issuer_server.state.keys[:] = [Key.generate("ES256", kid="k2")]
    clock.now += 121
    guard.verify(token)  # still the held set while the refresh runs
    wait_until(lambda: issuer_server.jwks_hits() == 2, "the background refresh")
    jwks = guard.jwks
    assert jwks is not None
    wait_until(lambda: jwks.keys is not None and "k2" in jwks.keys, "the new set")
    with pytest.raises(KeyNotFound):
        guard.verify(token)


def test_discovery_finds_jwks_uri(issuer_server: IssuerServer) -> None:
    guard = Guard(issuer=issuer_server.url, audience="jotkit")
    token = make_token(issuer_server.state.keys[0], issuer_server.url)
    assert guard.verify(token).sub == "user-1"
    # RFC 8414's location first; an OpenID Provider's document where that is 404.
    assert issuer_server.state.hits["/.well-known/oauth-authorization-server"] == 1
    assert issuer_server.state.hits["/.well-known/openid-configuration"] == 1
    assert guard.jwks is not None
    assert guard.jwks.url == issuer_server.url + "/.well-known/jwks.json"


def test_discovery_of_a_path_issuer_tries_rfc8414_then_the_appended_location(
    issuer_server: IssuerServer,
) -> None:
    # A proxy that routes only the issuer's path: RFC 8414 §3.1's location answers 404.
    issuer = issuer_server.url + "/tenant"
    issuer_server.state.discovery_issuer = issuer
    issuer_server.state.discovery_paths = ("/tenant/.well-known/oauth-authorization-server",)
    guard = Guard(issuer=issuer, audience="jotkit")
    assert guard.verify(make_token(issuer_server.state.keys[0], issuer)).sub == "user-1"
    hits = issuer_server.state.hits
    assert hits["/.well-known/oauth-authorization-server/tenant"] == 1
    assert hits["/tenant/.well-known/oauth-authorization-server"] == 1
    assert "/tenant/.well-known/openid-configuration" not in hits


def test_discovery_with_no_metadata_anywhere_names_every_location(
    issuer_server: IssuerServer,
) -> None:
    issuer_server.state.discovery_paths = ()
    guard = Guard(issuer=issuer_server.url, audience="jotkit")
    with pytest.raises(JWKSUnavailable, match=r"404 at .*oauth-authorization-server.*openid"):
        guard.verify(make_token(issuer_server.state.keys[0], issuer_server.url))


def test_discovery_refuses_a_document_for_another_issuer(issuer_server: IssuerServer) -> None:
    issuer_server.state.discovery_issuer = "https://evil.example.test"
    guard = Guard(issuer=issuer_server.url, audience="jotkit")
    guard_jwks = guard.jwks
    assert guard_jwks is not None
    with pytest.raises(JWKSUnavailable) as info:
        guard_jwks.refresh()
    assert "evil.example.test" in str(info.value)


def test_start_loads_keys_before_the_first_request(issuer_server: IssuerServer) -> None:
    guard = remote_guard(issuer_server, Monotonic())
    guard.start()
    assert issuer_server.jwks_hits() == 1
    guard.verify(make_token(issuer_server.state.keys[0], issuer_server.url))
    assert issuer_server.jwks_hits() == 1
    guard.close()


# -- a hostile or broken issuer --------------------------------------------------------------


def test_a_shared_secret_published_in_the_jwks_never_verifies(issuer_server: IssuerServer) -> None:
    # Anyone can read a JWKS: an oct key in it would let anyone sign tokens.
    secret = Key.generate("HS256", kid="leaked")
    published = [issuer_server.state.keys[0].public().to_jwk(), secret.to_jwk(private=True)]
    issuer_server.state.jwks_body = orjson.dumps({"keys": published})
    guard = remote_guard(issuer_server, Monotonic())
    assert guard.verify(make_token(issuer_server.state.keys[0], issuer_server.url)).sub
    with pytest.raises(JoseError):
        guard.verify(make_token(secret, issuer_server.url, sub="attacker"))
    assert guard.jwks is not None and guard.jwks.keys is not None
    assert "leaked" not in guard.jwks.keys


def test_private_members_in_the_jwks_are_ignored(issuer_server: IssuerServer) -> None:
    key = issuer_server.state.keys[0]
    issuer_server.state.jwks_body = orjson.dumps({"keys": [key.to_jwk(private=True)]})
    guard = remote_guard(issuer_server, Monotonic())
    assert guard.verify(make_token(key, issuer_server.url)).sub == "user-1"
    assert guard.jwks is not None and guard.jwks.keys is not None
    assert not any(held.is_private for held in guard.jwks.keys)


def test_an_oversized_jwks_is_refused(issuer_server: IssuerServer) -> None:
    issuer_server.state.jwks_body = b'{"keys": [], "pad": "' + b"x" * (1 << 20) + b'"}'
    jwks = RemoteJWKS(issuer_server.url + "/.well-known/jwks.json")
    with pytest.raises(JWKSUnavailable, match="answered over"):
        jwks.refresh()
    jwks.close()


def test_a_trickling_jwks_is_given_up_at_the_deadline(issuer_server: IssuerServer) -> None:
    # One byte every 0.2 s passes every per-read timeout; the whole answer has a deadline.
    issuer_server.state.trickle_seconds = 0.2
    jwks = RemoteJWKS(issuer_server.url + "/.well-known/jwks.json", timeout_seconds=1)
    with pytest.raises(JWKSUnavailable, match="took over 2 s"):
        jwks.refresh()
    jwks.close()


@pytest.mark.parametrize("jwks_uri", ["http://[::1/jwks", "http://" + "a" * 70_000 + "/jwks"])
def test_an_invalid_jwks_uri_is_unavailable_not_a_crash(
    issuer_server: IssuerServer, jwks_uri: str
) -> None:
    issuer_server.state.jwks_uri = jwks_uri
    guard = Guard(issuer=issuer_server.url, audience="jotkit")
    with pytest.raises(JWKSUnavailable):
        guard.verify(make_token(issuer_server.state.keys[0], issuer_server.url))
    guard.close()
