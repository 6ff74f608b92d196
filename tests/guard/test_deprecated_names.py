"""The guard's names before issue 19's renames (docs/renames.md) still work, and each warns."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import httpx
import pytest
from _apps import serve_asgi
from _issuer import make_token
from fastapi import Depends, FastAPI

import jotkit.guard
from jotkit import Key
from jotkit.guard import Guard, InsufficientScope, Principal
from jotkit.guard.asgi import install_error_handler

ISSUER = "https://auth.example.test"


@pytest.fixture(scope="module")
def key() -> Key:
    return Key.generate("ES256", kid="k1")


@pytest.fixture(scope="module")
def guard(key: Key) -> Guard:
    return Guard(issuer=ISSUER, audience="jotkit", keys=key.public())


def test_claims_is_principal_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match="jotkit.guard.Principal"):
        old = jotkit.guard.Claims
    assert old is Principal


def test_claims_module_reexports_principal_and_warns() -> None:
    sys.modules.pop("jotkit.guard.claims", None)
    with pytest.warns(DeprecationWarning, match="jotkit.guard.claims is deprecated"):
        module = importlib.import_module("jotkit.guard.claims")
    assert module.Claims is Principal


def test_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        jotkit.guard.Nothing  # noqa: B018


def test_principal_require_warns_and_checks_scopes(guard: Guard, key: Key) -> None:
    principal = guard.verify(make_token(key, ISSUER, scope="read"))
    with pytest.warns(DeprecationWarning, match="require_scopes"):
        principal.require(["read"])
    with pytest.warns(DeprecationWarning), pytest.raises(InsufficientScope):
        principal.require(["admin"])


@pytest.mark.parametrize("old", ["Guard.require", "asgi.require"])
def test_old_fastapi_dependency_warns_and_still_guards(guard: Guard, key: Key, old: str) -> None:
    from jotkit.guard import asgi

    with pytest.warns(DeprecationWarning, match="fastapi_dependency"):
        dependency = (
            guard.require(scopes=["read"])
            if old == "Guard.require"
            else asgi.require(guard, ["read"])
        )
    app = FastAPI()
    install_error_handler(app)

    @app.get("/me")
    async def me(principal: Any = Depends(dependency)) -> dict[str, str]:  # noqa: B008
        return {"sub": principal.sub}

    with serve_asgi(app) as url:
        token = make_token(key, ISSUER, scope="read")
        ok = httpx.get(url + "/me", headers={"Authorization": f"Bearer {token}"})
        short = make_token(key, ISSUER, scope="write")
        refused = httpx.get(url + "/me", headers={"Authorization": f"Bearer {short}"})
        anonymous = httpx.get(url + "/me")
    assert (ok.status_code, ok.json()) == (200, {"sub": "user-1"})
    assert refused.status_code == 403
    assert anonymous.status_code == 401
