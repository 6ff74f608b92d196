"""oauth4webapi and panva's dpop package, as a DPoP client of a running ``jotkit serve``.

node (dpop_live.mjs) discovers the server, logs in with a proof from ``dpop.generateProof``
(plain fetch: the login is not an OAuth grant), refreshes with oauth4webapi's
``refreshTokenGrantRequest`` and its ``DPoP`` handle at the advertised token endpoint, and
calls ``/me`` on jotkit serve and on a separate guard process (the FastAPI example) with
``protectedResourceRequest``. With the server's nonces on, oauth4webapi's use_dpop_nonce
retry path runs. A token lifted from node, without its private key, is refused everywhere:
as Bearer and with a proof by another key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from _node import NodeClients, NodeSession

from jotkit import Key
from jotkit.jose.b64 import b64decode
from jotkit.jose.dpop import make_proof
from servers import ResourceServer, ServerProcess, launch, start_server, wait_up


@pytest.fixture(scope="module", params=["plain", "nonces"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"JOTKIT_DPOP_NONCE": "true"} if request.param == "nonces" else {}
    started = start_server(tmp_path_factory.mktemp(f"dpop-{request.param}"), env=env)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def guarded(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ResourceServer]:
    """The FastAPI example trusting ``server``, in a process of its own; with the server's
    nonces on, it requires resource-server nonces too (RFC 9449 §9)."""
    env = {"JOTKIT_DPOP_NONCE_SECRET": "n" * 32} if nonces_on(server) else {}
    service = launch(
        "fastapi", server.issuer, tmp_path_factory.mktemp("guarded"), redis_url=None, env=env
    )
    try:
        wait_up(service)
        yield service
    finally:
        service.stop()


@dataclass
class LiveNode:
    """dpop_live.mjs after discovery: ``ready`` is its first answer (metadata, jkt)."""

    session: NodeSession
    ready: dict[str, Any]

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        return self.session.ask(command)  # type: ignore[no-any-return]


@pytest.fixture
def node(node_clients: NodeClients, server: ServerProcess) -> Iterator[LiveNode]:
    session = node_clients.session("dpop_live.mjs")
    try:
        ready = session.ask(
            {"issuer": server.issuer, "email": server.email, "password": server.password}
        )
        assert ready["event"] == "ready", ready
        yield LiveNode(session, ready)
    finally:
        session.close()


def nonces_on(server: ServerProcess) -> bool:
    return server.env.get("JOTKIT_DPOP_NONCE") == "true"


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(b64decode(token.split(".")[1]))  # type: ignore[no-any-return]


def test_node_logs_in_refreshes_and_calls_with_dpop(
    node: LiveNode, server: ServerProcess, guarded: ResourceServer
) -> None:
    ready = node.ready
    assert "ES256" in ready["metadata"]["dpop_signing_alg_values_supported"]
    assert ready["metadata"]["token_endpoint"] == f"{server.issuer}/token/refresh"
    jkt = ready["jkt"]

    login = node.ask({"cmd": "login"})
    assert login["ok"], login
    assert login["token_type"] == "DPoP"
    assert claims_of(login["access_token"])["cnf"] == {"jkt": jkt}
    assert login["nonce_retries"] == (1 if nonces_on(server) else 0)

    refreshed = node.ask({"cmd": "refresh"})
    assert refreshed["ok"], refreshed
    assert refreshed["token_type"] == "dpop"  # oauth4webapi lower-cases it
    assert claims_of(refreshed["access_token"])["cnf"] == {"jkt": jkt}
    # The handle had no nonce yet (the login was a plain fetch): the server asked for one.
    assert refreshed["nonce_retries"] == (1 if nonces_on(server) else 0)

    # jotkit serve wants nonces at its token endpoints only; the guard, when they are on, at
    # every call: node's first call there gets 401 use_dpop_nonce and retries with it.
    for url, retries in ((f"{server.issuer}/me", 0), (f"{guarded.url}/me", nonces_on(server))):
        called = node.ask({"cmd": "call", "url": url})
        assert called["ok"], (url, called)
        assert called["body"]["sub"] == claims_of(refreshed["access_token"])["sub"]
        assert called["nonce_retries"] == retries, url

    # Refreshed again: the family stays bound to node's key.
    again = node.ask({"cmd": "refresh"})
    assert again["ok"], again
    assert claims_of(again["access_token"])["cnf"] == {"jkt": jkt}


def test_token_lifted_from_node_is_refused_without_its_key(
    node: LiveNode, server: ServerProcess, guarded: ResourceServer
) -> None:
    login = node.ask({"cmd": "login"})
    assert login["ok"], login
    token = login["access_token"]
    thief = Key.generate("ES256")
    for url in (f"{server.issuer}/me", f"{guarded.url}/me"):
        as_bearer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert as_bearer.status_code == 401, (url, as_bearer.text)
        assert as_bearer.json()["code"] == "ERR_DPOP_BOUND_TOKEN_AS_BEARER"
        proof = make_proof(thief, "GET", url, access_token=token)
        with_other_key = httpx.get(
            url, headers={"Authorization": f"DPoP {token}", "DPoP": proof}, timeout=30
        )
        assert with_other_key.status_code == 401, (url, with_other_key.text)
        assert with_other_key.json()["code"] == "ERR_DPOP_JKT_MISMATCH"
    # node itself, holding the key, still gets in.
    assert node.ask({"cmd": "call", "url": f"{guarded.url}/me"})["ok"]
