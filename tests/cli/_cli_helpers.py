"""Helpers for the command-line tests: run the CLI for real, make tokens and key files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from jotkit.cli import main
from jotkit.jose import Key, jwt
from jotkit.jose.b64 import b64encode

# The console script the package installs: the tests run it as a user would.
JOTKIT = Path(sys.executable).with_name("jotkit")
ANSI_ESCAPE = "\x1b["


def invoke(
    *args: str, input: str | bytes | None = None, env: Mapping[str, str] | None = None
) -> Result:
    """Run ``jotkit ARGS`` in-process through the real click entry point (jotkit.cli.main).

    NO_COLOR from the developer's shell must not change what the tests see.
    """
    environment: dict[str, str | None] = {"NO_COLOR": None}
    environment.update(env or {})
    return CliRunner().invoke(main, list(args), input=input, env=environment)


def run_script(
    *args: str, input: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``jotkit`` console script in a subprocess."""
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environment.update(env or {})
    return subprocess.run(
        [str(JOTKIT), *args],
        input=input,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def sign(key: Key, lifetime: float | None = 900, **claims: Any) -> str:
    """A real token signed by ``key``: iat now, exp now + lifetime (None: no exp)."""
    now = int(time.time())
    body: dict[str, Any] = {"sub": "alice", "iat": now}
    if lifetime is not None:
        body["exp"] = now + int(lifetime)
    body.update(claims)
    header = body.pop("_header", None)
    return jwt.sign(body, key, header=header, allow_no_exp=lifetime is None)


def forge(header: Mapping[str, Any], claims: Mapping[str, Any], signature: str = "c2ln") -> str:
    """A token with any header and claims (even what jwt.sign refuses); the signature is junk."""

    def segment(value: Mapping[str, Any]) -> str:
        return b64encode(json.dumps(value).encode())

    return f"{segment(header)}.{segment(claims)}.{signature}"


def write_key_files(key: Key, directory: Path) -> dict[str, Path]:
    """The key in every file form the CLI reads: private/public PEM, JWK and a JWKS."""
    files = {
        "private.pem": key.to_pem(private=True),
        "public.pem": key.to_pem(),
        "private.jwk": json.dumps(key.to_jwk(private=True)).encode(),
        "public.jwk": json.dumps(key.to_jwk()).encode(),
        "jwks.json": json.dumps({"keys": [key.to_jwk()]}).encode(),
    }
    paths = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        paths[name] = path
    return paths


@dataclass(frozen=True)
class Answer:
    """What ``http_server`` sends for one path, when a (status, body) pair is not enough."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    trickle_seconds: float = 0  # > 0: send the body one byte per this many seconds


@contextmanager
def http_server(
    routes: Mapping[str, tuple[int, bytes] | Answer], *, trickle_seconds: float = 0
) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a free port) answering GET path -> (status, body) or
    an Answer; with ``trickle_seconds``, it sends each body one byte per that many seconds."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = routes.get(self.path, (404, b'{"error": "not_found"}'))
            if not isinstance(answer, Answer):
                answer = Answer(*answer, trickle_seconds=trickle_seconds)
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            body, pause = answer.body, answer.trickle_seconds
            chunks = [body[i : i + 1] for i in range(len(body))] if pause else [body]
            try:
                for chunk in chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(pause)
            except OSError:
                pass  # the client gave up

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # closing does not wait for a trickle to finish
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
