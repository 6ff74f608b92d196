"""Real clients against a running ``jotkit serve``: node jose + oauth4webapi, PyJWT's
PyJWKClient and jotkit's own guard, through discovery, refresh grants and a key rotation.

node (live.mjs) discovers the server with oauth4webapi (RFC 8414), refreshes with
``refreshTokenGrantRequest`` at the advertised token endpoint, and verifies each access token
with ``createRemoteJWKSet`` + ``jwtVerify`` (issuer from discovery, audience "jotkit").
The rotation runs at the shortest publish-ahead the server accepts (35 s with a 0 s clock
skew and a 30 s max-age): every client keeps verifying every token across it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from _node import NodeClients

from jotkit.guard import Guard, metadata_url
from servers import ServerProcess, free_port, start_server

# The shortest safe publish-ahead: max(max-age 30, 30 s cooldown) + 5 s reload + 0 s skew.
_ROTATION_ENV = {
    "JOTKIT_CLOCK_SKEW_SECONDS": "0",
    "JOTKIT_JWKS_MAX_AGE_SECONDS": "30",
    "JOTKIT_KEY_PUBLISH_AHEAD_SECONDS": "35",
}
_ROTATION_DEADLINE_SECONDS = 120


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An issuer at the host's root, default settings."""
    server = start_server(tmp_path_factory.mktemp("root"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An issuer with a path, at the shortest publish-ahead it accepts."""
    port = free_port()
    issuer = {"JOTKIT_ISSUER": f"http://127.0.0.1:{port}/tenant"}
    server = start_server(
        tmp_path_factory.mktemp("tenant"), port=port, env={**issuer, **_ROTATION_ENV}
    )
    yield server
    server.stop()


class NodeClient:
    """live.mjs: one JSON command line in, one JSON answer line out."""

    def __init__(self, clients: NodeClients, server: ServerProcess) -> None:
        self.process = clients.start("live.mjs")
        self.ready = self._ask(
            {
                "issuer": server.issuer,
                "audience": "jotkit",
                "email": server.email,
                "password": server.password,
            }
        )

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        line = self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            pytest.fail(f"live.mjs ended: {self.process.stderr.read()[-2000:]}")
        return json.loads(line)  # type: ignore[no-any-return]

    def refresh(self) -> dict[str, Any]:
        """A refresh grant through oauth4webapi, then jwtVerify of the new access token."""
        return self._ask({"cmd": "refresh"})

    def verify(self, token: str) -> dict[str, Any]:
        """jwtVerify with the remote JWK Set of the discovered jwks_uri."""
        return self._ask({"cmd": "verify", "token": token})

    def close(self) -> None:
        """Quit and wait."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        self.process.stdin.flush()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PythonClients:
    """A refreshing Python client whose access tokens PyJWKClient + PyJWT and jotkit's
    guard verify, each with the server's discovered jwks_uri."""

    def __init__(self, server: ServerProcess) -> None:
        self.issuer = server.issuer
        self.http = httpx.Client(timeout=30)
        self.metadata = self.http.get(metadata_url(self.issuer)).json()
        pair = self.http.post(
            f"{self.issuer}/login", json={"email": server.email, "password": server.password}
        ).json()
        self.refresh_token = pair["refresh_token"]
        self.pyjwk = pyjwt.PyJWKClient(self.metadata["jwks_uri"])
        self.guard = Guard(issuer=self.issuer, audience="jotkit")

    def next_token(self) -> str:
        """A refresh grant as an RFC 6749 form, like any OAuth client library sends."""
        answer = self.http.post(
            self.metadata["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
        )
        assert answer.status_code == 200, answer.text
        pair = answer.json()
        self.refresh_token = pair["refresh_token"]
        return pair["access_token"]  # type: ignore[no-any-return]

    def verify(self, token: str) -> dict[str, str]:
        """Each verifier's verdict: "ok" or the refusal."""
        verdicts = {}
        try:
            key = self.pyjwk.get_signing_key_from_jwt(token)
            pyjwt.decode(token, key, algorithms=["ES256"], audience="jotkit", issuer=self.issuer)
            verdicts["pyjwkclient"] = "ok"
        except pyjwt.PyJWTError as exc:
            verdicts["pyjwkclient"] = f"{type(exc).__name__}: {exc}"
        try:
            self.guard.authenticate(f"Bearer {token}")
            verdicts["guard"] = "ok"
        except Exception as exc:
            verdicts["guard"] = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
        return verdicts

    def close(self) -> None:
        """Close the guard and the HTTP client."""
        self.guard.close()
        self.http.close()


@pytest.mark.parametrize("which", ["root", "tenant"])
def test_node_discovers_refreshes_and_verifies(
    which: str, node_clients: NodeClients, request: pytest.FixtureRequest
) -> None:
    server: ServerProcess = request.getfixturevalue(which)
    node = NodeClient(node_clients, server)
    try:
        ready = node.ready
        assert ready["event"] == "ready" and ready["ok"], ready
        assert ready["metadata"]["issuer"] == server.issuer
        assert ready["metadata"]["token_endpoint"] == f"{server.issuer}/token/refresh"
        refreshed = node.refresh()
        assert refreshed["ok"] and refreshed["refreshed"], refreshed
        assert refreshed["token_type"].lower() == "bearer"
        # A token node did not get itself: from a Python login, verified over the same JWKS.
        pair = httpx.post(
            f"{server.issuer}/login", json={"email": server.email, "password": server.password}
        ).json()
        assert node.verify(pair["access_token"])["ok"]
        forged = pair["access_token"][:-4] + (
            "AAAA" if pair["access_token"][-4:] != "AAAA" else "BBBB"
        )
        refused = node.verify(forged)
        assert not refused["ok"] and refused["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
    finally:
        node.close()


def test_python_clients_verify_with_the_discovered_keys(root: ServerProcess) -> None:
    clients = PythonClients(root)
    try:
        assert clients.verify(clients.next_token()) == {"pyjwkclient": "ok", "guard": "ok"}
    finally:
        clients.close()


def test_no_client_refuses_a_token_across_a_key_rotation(
    tenant: ServerProcess, node_clients: NodeClients
) -> None:
    node = NodeClient(node_clients, tenant)
    python = PythonClients(tenant)
    try:
        assert node.ready["ok"], node.ready
        old_kid = node.ready["kid"]
        # Every client holds the key set from just before the rotation: its cooldown runs.
        assert python.verify(python.next_token()) == {"pyjwkclient": "ok", "guard": "ok"}
        rotated = tenant.cli("keys", "rotate")  # the server's publish-ahead: 35 s
        assert rotated.returncode == 0, rotated.stderr
        seen: dict[str, set[str]] = {"node": set(), "python": set()}
        refusals: list[Any] = []
        new_tokens = 0
        deadline = time.monotonic() + _ROTATION_DEADLINE_SECONDS
        while new_tokens < 3:
            assert time.monotonic() < deadline, f"the new key never signed; {seen}"
            from_node = node.refresh()
            seen["node"].add(from_node["kid"])
            if not from_node["ok"]:
                refusals.append(("node jose", from_node))
            token = python.next_token()
            kid = pyjwt.get_unverified_header(token)["kid"]
            seen["python"].add(kid)
            verdicts = python.verify(token)
            refusals += [(name, kid, v) for name, v in verdicts.items() if v != "ok"]
            new_tokens += from_node["kid"] != old_kid and kid != old_kid
            time.sleep(1)
        assert refusals == []
        assert all(len(kids) == 2 and old_kid in kids for kids in seen.values()), seen
    finally:
        node.close()
        python.close()
