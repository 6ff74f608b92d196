"""Two guard processes sharing Redis refuse a DPoP proof replayed from one to the other.

Real processes: ``jotkit serve`` issues a DPoP-bound token; the FastAPI and the Flask
examples run as two resource servers behind one public URL (JOTKIT_PUBLIC_URL), each its own
process with its own guard, sharing a private redis-server for the revocation feed and the
DPoP replay cache. The same request with the same proof goes to the first, then to the second:
the second must refuse it as a replay, while a fresh proof is accepted there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from jotkit import Key
from jotkit.jose.dpop import make_proof
from servers import (
    PrivateRedis,
    ResourceServer,
    ServerProcess,
    launch,
    require_service,
    start_server,
    wait_up,
)

PUBLIC_URL = "https://api.example.test"


@dataclass
class Stack:
    auth: ServerProcess
    services: list[ResourceServer]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_service("Redis", "127.0.0.1", 6379)
    directory = tmp_path_factory.mktemp("dpop-processes")
    redis = PrivateRedis(directory)  # skips (fails under CI=true) without redis-server
    redis.start()
    services: list[ResourceServer] = []
    auth: ServerProcess | None = None
    try:
        auth = start_server(directory, env={"JOTKIT_REDIS_URL": redis.url})
        for example in ("fastapi", "flask"):
            services.append(
                launch(
                    example,
                    auth.url,
                    directory,
                    redis_url=redis.url,
                    env={"JOTKIT_PUBLIC_URL": PUBLIC_URL},
                )
            )
        for service in services:
            wait_up(service)
        yield Stack(auth, services)
    finally:
        for service in services:
            service.stop()
        if auth is not None:
            auth.stop()
        redis.kill()


def bound_login(auth: ServerProcess, key: Key) -> str:
    """A DPoP login: the access token bound to ``key``."""
    url = f"{auth.issuer}/login"
    answer = httpx.post(
        url,
        json={"email": auth.email, "password": auth.password},
        headers={"DPoP": make_proof(key, "POST", url)},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    return answer.json()["access_token"]  # type: ignore[no-any-return]


def call(service: ResourceServer, token: str, proof: str) -> httpx.Response:
    return httpx.get(
        service.url + "/me",
        headers={"Authorization": f"DPoP {token}", "DPoP": proof},
        timeout=30,
    )


def test_proof_replayed_to_another_guard_process_is_refused(stack: Stack) -> None:
    key = Key.generate("ES256")
    token = bound_login(stack.auth, key)
    first, second = stack.services
    proof = make_proof(key, "GET", PUBLIC_URL + "/me", access_token=token)
    accepted = call(first, token, proof)
    assert accepted.status_code == 200, accepted.text
    replayed = call(second, token, proof)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["code"] == "ERR_DPOP_REPLAYED"
    assert 'error="invalid_dpop_proof"' in replayed.headers["WWW-Authenticate"]
    # The second process works: a fresh proof for the same request is accepted there.
    fresh = make_proof(key, "GET", PUBLIC_URL + "/me", access_token=token)
    assert call(second, token, fresh).status_code == 200


def test_replay_back_to_the_first_process_is_refused_too(stack: Stack) -> None:
    key = Key.generate("ES256")
    token = bound_login(stack.auth, key)
    first, second = stack.services
    proof = make_proof(key, "GET", PUBLIC_URL + "/me", access_token=token)
    assert call(second, token, proof).status_code == 200
    replayed = call(first, token, proof)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["code"] == "ERR_DPOP_REPLAYED"
