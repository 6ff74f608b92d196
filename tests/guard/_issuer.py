"""Helpers for the guard tests: a token factory and a real local issuer (JWKS, discovery)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from jotkit import Key, KeySet, jwt

AUDIENCE = "jotkit"


def make_token(key: Key, issuer: str, typ: str = "at+jwt", **overrides: Any) -> str:
    """An access token shaped like the auth server's (RFC 9068), signed by ``key``."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "sid": "session-1",
        "client_id": "web",
        "scope": "read write",
    }
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.sign(claims, key, header={"typ": typ})


@dataclass
class IssuerState:
    """What the fake issuer serves; tests change it between requests."""

    keys: list[Key]
    cache_control: str = "max-age=120"
    status: int = 200
    discovery_issuer: str | None = None  # None: the server's own URL
    discovery_paths: tuple[str, ...] = ("/.well-known/openid-configuration",)
    jwks_uri: str | None = None  # None: the server's own /.well-known/jwks.json
    jwks_body: bytes | None = None  # served as the JWKS instead of ``keys``
    trickle_seconds: float = 0  # > 0: send the JWKS one byte per this many seconds
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class IssuerServer:
    """A real HTTP server (http.server in a thread) publishing a JWKS and a discovery doc."""

    def __init__(self, state: IssuerState) -> None:
        self.state = state
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with outer.state.lock:
                    outer.state.hits[self.path] = outer.state.hits.get(self.path, 0) + 1
                if self.path in outer.state.discovery_paths:
                    body = orjson.dumps(
                        {
                            "issuer": outer.state.discovery_issuer or outer.url,
                            "jwks_uri": outer.state.jwks_uri
                            or outer.url + "/.well-known/jwks.json",
                        }
                    )
                    self._answer(200, body, "max-age=3600")
                elif self.path == "/.well-known/jwks.json":
                    body = outer.state.jwks_body or orjson.dumps(
                        KeySet([key.public() for key in outer.state.keys]).to_jwks()
                    )
                    self._answer(outer.state.status, body, outer.state.cache_control)
                else:
                    self._answer(404, b"{}", "no-store")

            def _answer(self, status: int, body: bytes, cache_control: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not outer.state.trickle_seconds:
                    self.wfile.write(body)
                    return
                for index in range(len(body)):
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(outer.state.trickle_seconds)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def jwks_hits(self) -> int:
        return self.state.hits.get("/.well-known/jwks.json", 0)

    def stop(self) -> None:
        """Shut down and close the listening socket: later connections are refused."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
