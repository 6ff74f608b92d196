"""The built wheel, installed into clean venvs outside the source tree: each extra works alone.

One venv per extra, each from the wheel plus only what that extra asks for, at the versions of
the committed uv.lock (used as constraints, so nothing is resolved anew). What a user who
installs ``jotkit``, ``jotkit[flask]``, ``jotkit[fastapi]``, ``jotkit[server]``,
``jotkit[redis]`` or ``jotkit[postgres]`` gets must work without the others' dependencies,
and a missing one must be named with the extra that installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from servers import DEADLINE_SECONDS, free_port, require_service, skip_or_fail

REPO = Path(__file__).resolve().parents[1]
# Modules the core must not pull in: they belong to extras.
EXTRA_MODULES = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "flask",
    "redis",
    "swagger_ui_bundle",
)


def _uv() -> str:
    uv = os.environ.get("JOTKIT_UV") or shutil.which("uv")
    if not uv:
        skip_or_fail("uv not found: run the tests through `make test` (it installs uv)")
    return str(uv)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The built wheel and a constraints file with every version of uv.lock."""
    uv = _uv()
    out = tmp_path_factory.mktemp("dist")
    _run(uv, "build", "--wheel", "--out-dir", out, REPO, cwd=out)
    (wheel,) = out.glob("jotkit-*.whl")
    constraints = out / "constraints.txt"
    _run(
        uv,
        "export",
        "--frozen",
        "--all-extras",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "--output-file",
        constraints,
        cwd=REPO,
    )
    return wheel, constraints


class CleanVenv:
    """A venv outside the source tree holding the wheel with ``extras`` and nothing else."""

    def __init__(self, root: Path, dist: tuple[Path, Path], extras: str, *also: str) -> None:
        uv = _uv()
        wheel, constraints = dist
        self.root = root
        self.bin = root / "venv" / "bin"
        _run(uv, "venv", "--quiet", "--python", sys.executable, root / "venv", cwd=root)
        requirement = f"jotkit[{extras}] @ {wheel.as_uri()}" if extras else str(wheel)
        _run(
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            self.bin / "python",
            "--constraint",
            constraints,
            requirement,
            *also,
            cwd=root,
        )
        # No PYTHONPATH, no source tree: the interpreter sees the venv only.
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
        self.env["HOME"] = str(root)
        self.env["XDG_DATA_HOME"] = str(root / "data")

    def python(self, script: str) -> str:
        """Run ``script`` with the venv's interpreter; asserts exit 0, returns stdout."""
        return _run(self.bin / "python", "-c", textwrap.dedent(script), cwd=self.root, env=self.env)

    def fails(self, *args: str | Path, command: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command that must fail; returns it for the message checks.

        A ``command`` (jotkit's CLI) fails with one line, never a traceback."""
        done = subprocess.run(
            [str(arg) for arg in args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode != 0, done.stdout
        assert not command or "Traceback" not in done.stderr, done.stderr
        return done

    def has(self, module: str) -> bool:
        """Whether ``module`` can be imported in this venv."""
        found = self.python(
            f"import importlib.util; print(bool(importlib.util.find_spec({module!r})))"
        )
        return found.strip() == "True"


def _venv(tmp_path: Path, dist: tuple[Path, Path], extras: str, *also: str) -> CleanVenv:
    return CleanVenv(tmp_path, dist, extras, *also)


# A guarded view checked in-process with the framework's own test client: a token signed by a
# key the guard trusts, and no token at all.
_TOKEN = """
import time, uuid
from jotkit import Key, KeySet, jwt
from jotkit.guard import Guard
key = Key.generate("ES256")
now = int(time.time())
token = jwt.sign(
    {"iss": "https://auth.example", "sub": "alice", "aud": "api", "iat": now, "exp": now + 60,
     "jti": uuid.uuid4().hex, "scope": "read"},
    key, header={"typ": "at+jwt"},
)
guard = Guard(issuer="https://auth.example", audience="api", keys=KeySet([key.public()]))
"""


def test_core_alone_signs_verifies_and_names_the_extras_it_lacks(
    tmp_path: Path, dist: tuple[Path, Path]
) -> None:
    venv = _venv(tmp_path, dist, "")
    for module in EXTRA_MODULES:
        assert not venv.has(module), f"the core install brought {module}"
    imported = venv.python(
        "import sys, jotkit, jotkit.jose, jotkit.guard, jotkit.revocation, jotkit.revocation.http,"
        " jotkit.accounts"
        f"\nprint(sorted(set({EXTRA_MODULES!r}) & set(sys.modules)))"
    )
    assert imported.strip() == "[]"

    jotkit = venv.bin / "jotkit"
    _run(jotkit, "keys", "generate", "--alg", "ES256", "--out", "signing.pem", cwd=tmp_path)
    jwks = _run(jotkit, "keys", "jwks", "signing.pem", cwd=tmp_path)
    (tmp_path / "jwks.json").write_text(jwks)
    token = _run(
        jotkit, "token", "sign", "--key", "signing.pem", "--sub", "alice", "--aud", "api",
        "--exp", "15m", cwd=tmp_path,
    ).strip()  # fmt: skip
    assert "alice" in _run(jotkit, "token", "decode", token, cwd=tmp_path)
    verified = _run(
        jotkit, "token", "verify", token, "--key", "jwks.json", "--aud", "api", cwd=tmp_path
    )
    assert verified.startswith("valid")

    serve = venv.fails(jotkit, "serve", "--port", str(free_port()))
    assert "pip install 'jotkit[server]'" in serve.stderr
    for module, extra in [
        ("jotkit.server", "server"),
        ("jotkit.store", "server"),
        ("jotkit.revocation.redis", "redis"),
        ("jotkit.guard.asgi", "fastapi"),
        ("jotkit.guard.django", "django"),
    ]:
        refused = venv.fails(venv.bin / "python", "-c", f"import {module}", command=False)
        # The one line a user sees last names the fix, not a bare ModuleNotFoundError.
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith("jotkit.extras.MissingExtra:"), refused.stderr
        assert f"pip install 'jotkit[{extra}]'" in last


def test_flask_guard_works_without_starlette(tmp_path: Path, dist: tuple[Path, Path]) -> None:
    venv = _venv(tmp_path, dist, "flask")
    assert not venv.has("starlette")
    assert not venv.has("fastapi")
    answers = venv.python(
        _TOKEN
        + """
from flask import Flask, g
app = Flask(__name__)

@app.get("/me")
@guard.flask_required(scopes=["read"])
def me():
    return {"sub": g.claims.sub}

client = app.test_client()
ok = client.get("/me", headers={"Authorization": f"Bearer {token}"})
print(ok.status_code, ok.get_json()["sub"])
refused = client.get("/me")
print(refused.status_code, refused.headers["WWW-Authenticate"])
"""
    ).splitlines()
    assert answers[0] == "200 alice"
    assert answers[1].startswith("401 Bearer")


def test_fastapi_guard_works_with_its_extra(tmp_path: Path, dist: tuple[Path, Path]) -> None:
    venv = _venv(tmp_path, dist, "fastapi")
    assert not venv.has("flask")
    assert not venv.has("sqlalchemy")
    answers = venv.python(
        _TOKEN
        + """
from typing import Annotated
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from jotkit.guard import Principal
from jotkit.guard.asgi import install_error_handler

app = FastAPI()
install_error_handler(app)

@app.get("/me")
async def me(claims: Annotated[Principal, Depends(guard.fastapi_dependency(scopes=["read"]))]):
    return {"sub": claims.sub}

with TestClient(app) as client:
    ok = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    print(ok.status_code, ok.json()["sub"])
    refused = client.get("/me")
    print(refused.status_code, refused.json()["code"])
"""
    ).splitlines()
    assert answers[0] == "200 alice"
    assert answers[1] == "401 ERR_GUARD_NO_CREDENTIALS"


def test_django_guard_works_without_starlette(tmp_path: Path, dist: tuple[Path, Path]) -> None:
    venv = _venv(tmp_path, dist, "drf")  # Django and Django REST framework
    assert not venv.has("starlette")
    assert not venv.has("flask")
    answers = venv.python(
        _TOKEN
        + """
import django
from django.conf import settings
from django.http import JsonResponse
from django.urls import path
settings.configure(
    ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="s" * 50, JOTKIT_GUARD=guard,
    INSTALLED_APPS=["rest_framework"], MIDDLEWARE=["jotkit.guard.django.GuardMiddleware"],
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": ["jotkit.guard.django.GuardAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "EXCEPTION_HANDLER": "jotkit.guard.django.exception_handler",
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()
from django.test import Client
from rest_framework.decorators import api_view
from rest_framework.response import Response
from jotkit.guard.django import guard_required

@guard_required(scopes=["read"])
def me(request):
    return JsonResponse({"sub": request.claims.sub})

@api_view(["GET"])
def api_me(request):
    return Response({"sub": request.auth.sub})

urlpatterns = [path("me", me), path("api/me", api_me)]
client = Client()
for url in ("/me", "/api/me"):
    ok = client.get(url, headers={"Authorization": f"Bearer {token}"})
    print(ok.status_code, ok.json()["sub"])
    refused = client.get(url)
    print(refused.status_code, refused.json()["code"])
"""
    ).splitlines()
    assert answers == ["200 alice", "401 ERR_GUARD_NO_CREDENTIALS"] * 2


@pytest.fixture
def fresh_schema() -> Iterator[str]:
    """A PostgreSQL URL (plain postgresql://, as a user writes it) into a new schema."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import sqlalchemy

    admin = sqlalchemy.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"jotkit_wheel_{uuid.uuid4().hex[:10]}"
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def _serve(venv: CleanVenv, *args: str) -> Iterator[str]:
    port = free_port()
    log = (venv.root / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(venv.bin / "jotkit"), "serve", "--port", str(port), *args],
        cwd=venv.root,
        env=venv.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            assert process.poll() is None, (venv.root / "serve.log").read_text()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (venv.root / "serve.log").read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        log.close()


def _check_served(url: str) -> None:
    home = httpx.get(url + "/")
    assert home.status_code == 200
    assert "<html" in home.text.lower()
    assert httpx.get(url + "/docs").status_code == 200
    # Swagger UI's files come from the installed swagger-ui-bundle-v2 wheel, not a CDN.
    assert httpx.get(url + "/docs/assets/swagger-ui-bundle.js").status_code == 200
    jwks = httpx.get(url + "/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.json()["keys"][0]["kty"]


def test_server_extra_serves_from_an_empty_data_dir(
    tmp_path: Path, dist: tuple[Path, Path]
) -> None:
    venv = _venv(tmp_path, dist, "server")
    assert not venv.has("redis")
    assert not venv.has("psycopg")
    with _serve(venv) as url:
        _check_served(url)
    # The migrations ran from the wheel's Alembic scripts into the (empty) XDG data dir.
    assert (tmp_path / "data" / "jotkit" / "jotkit.db").exists()
    refused = venv.fails(
        venv.bin / "jotkit", "serve", "--database", "postgresql://postgres@127.0.0.1:1/none"
    )
    assert "pip install 'jotkit[postgres]'" in refused.stderr


def test_postgres_extra_serves_on_postgresql(
    tmp_path: Path, dist: tuple[Path, Path], fresh_schema: str
) -> None:
    venv = _venv(tmp_path, dist, "postgres")
    assert not venv.has("redis")
    with _serve(venv, "--database", fresh_schema) as url:
        _check_served(url)


def test_redis_extra_carries_the_feed(tmp_path: Path, dist: tuple[Path, Path]) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    venv = _venv(tmp_path, dist, "redis")
    assert not venv.has("fastapi")
    prefix = f"jotkit-wheel-{uuid.uuid4().hex[:8]}"
    seen = venv.python(
        f"""
import time
from jotkit.revocation import Revocation, RevocationSet
from jotkit.revocation.redis import RedisPublisher, RedisSubscriber
url, prefix = "redis://127.0.0.1:6379/0", {prefix!r}
revocations = RevocationSet()
with RedisPublisher(url, prefix=prefix) as publisher, \\
        RedisSubscriber(url, revocations, prefix=prefix) as subscriber:
    assert subscriber.wait_ready({DEADLINE_SECONDS})
    entry = Revocation("jti", "token-1", forget_after=time.time() + 60, cursor=1)
    assert publisher.publish(entry)
    deadline = time.monotonic() + {DEADLINE_SECONDS}
    while len(revocations) == 0:
        assert time.monotonic() < deadline, "the entry never arrived"
        time.sleep(0.01)
    assert [(e.kind, e.value) for e in revocations.entries()] == [("jti", "token-1")]
    publisher.prune(time.time() + 3600)
print("revoked")
"""
    )
    assert seen.strip() == "revoked"
