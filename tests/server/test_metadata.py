"""RFC 8414 metadata that standard validators accept, for issuers with and without a path.

Three real servers: an issuer at the host's root, an issuer with a path that jotkit serves
itself (requests arrive with the prefix, as from a proxy that passes paths through), and the
same issuer behind a proxy that strips the prefix (``root_path = "/"``; the test sends the
paths such a proxy forwards).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from jotkit.guard import Guard, metadata_url
from jotkit.server.metadata import metadata
from jotkit.server.settings import Settings
from servers import ServerProcess, free_port, start_server


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("root"))
    yield server
    server.stop()


def _tenant_server(
    factory: pytest.TempPathFactory, name: str, env: dict[str, str]
) -> ServerProcess:
    """A server for the issuer http://127.0.0.1:PORT/tenant, with ``env`` on top."""
    port = free_port()
    issuer = {"JOTKIT_ISSUER": f"http://127.0.0.1:{port}/tenant"}
    return start_server(factory.mktemp(name), port=port, env={**issuer, **env})


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cookies = {"JOTKIT_COOKIE_MODE": "true", "JOTKIT_COOKIE_SECURE": "false"}
    server = _tenant_server(tmp_path_factory, "tenant", cookies)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stripped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = _tenant_server(tmp_path_factory, "stripped", {"JOTKIT_ROOT_PATH": "/"})
    yield server
    server.stop()


@pytest.fixture(params=["root", "tenant"])
def served(request: pytest.FixtureRequest) -> ServerProcess:
    """Each server that answers at the URLs it advertises (no proxy in between)."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_metadata_passes_authlibs_rfc8414_validation(
    served: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = served.issuer
    answer = httpx.get(metadata_url(issuer))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    assert document["issuer"] == issuer
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # http on loopback, for the test
    AuthorizationServerMetadata(document).validate()
    # No authorization endpoint and no OpenID members: nothing promises a flow we lack.
    assert document["response_types_supported"] == ["none"]
    assert "authorization_endpoint" not in document
    assert not any(name.startswith(("id_token", "userinfo")) for name in document)


def test_metadata_of_an_https_issuer_validates_without_exceptions() -> None:
    for issuer in ("https://auth.example.com", "https://auth.example.com/tenant"):
        document = metadata(Settings(issuer=issuer))
        AuthorizationServerMetadata(document).validate()
        assert document["jwks_uri"] == f"{issuer}/.well-known/jwks.json"


def test_the_appended_metadata_location_serves_the_same_document(served: ServerProcess) -> None:
    issuer = served.issuer
    inserted = httpx.get(metadata_url(issuer)).json()
    appended = httpx.get(f"{issuer}/.well-known/oauth-authorization-server")
    assert appended.status_code == 200 and appended.json() == inserted


def test_openid_configuration_is_a_clear_404(served: ServerProcess) -> None:
    issuer = served.issuer
    for url in (
        metadata_url(issuer, "openid-configuration"),
        f"{issuer}/.well-known/openid-configuration",
    ):
        answer = httpx.get(url)
        assert answer.status_code == 404, url
        body = answer.json()
        assert body["error"] == "not_an_openid_provider"
        assert metadata_url(issuer) in body["error_description"]


def test_every_advertised_url_answers(served: ServerProcess) -> None:
    issuer = served.issuer
    document = httpx.get(metadata_url(issuer)).json()
    client = httpx.Client(timeout=30)
    pair = client.post(
        f"{issuer}/login", json={"email": served.email, "password": served.password}
    ).json()
    keys = client.get(document["jwks_uri"])
    assert keys.status_code == 200 and keys.json()["keys"]
    refreshed = client.post(
        document["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert client.post(document["revocation_endpoint"], data={"token": "x"}).status_code == 200
    introspection = client.post(document["introspection_endpoint"], data={"token": "x"})
    assert introspection.json()["error"] == "invalid_client"  # there, and wants the secret
    assert client.get(document["service_documentation"]).status_code == 200
    assert client.get(document["revocation_feed_endpoint"]).status_code == 200
    client.close()


def test_the_guard_discovers_a_path_issuers_keys(tenant: ServerProcess) -> None:
    issuer = tenant.issuer
    token = httpx.post(
        f"{issuer}/login", json={"email": tenant.email, "password": tenant.password}
    ).json()["access_token"]
    guard = Guard(issuer=issuer, audience="jotkit")
    try:
        assert guard.authenticate(f"Bearer {token}").sub
    finally:
        guard.close()


def test_a_server_under_a_path_answers_only_there(tenant: ServerProcess) -> None:
    outside = httpx.post(f"{tenant.url}/login", json={"email": "a@b.c", "password": "x"})
    assert outside.status_code == 404
    assert "/tenant/" in outside.json()["error_description"]
    bare = httpx.get(f"{tenant.url}/tenant?x=1")
    assert bare.status_code == 308 and bare.headers["location"] == "/tenant/?x=1"
    page = httpx.get(f"{tenant.url}/tenant/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    login = httpx.post(
        f"{tenant.url}/tenant/login", json={"email": tenant.email, "password": tenant.password}
    )
    paths = {cookie.name: cookie.path for cookie in login.cookies.jar}
    assert paths == {
        "jotkit_access": "/tenant/",
        "jotkit_refresh": "/tenant/token",
        "jotkit_csrf": "/tenant/",
    }


def test_behind_a_stripping_proxy_the_public_urls_are_still_advertised(
    stripped: ServerProcess,
) -> None:
    issuer = f"{stripped.url}/tenant"
    # What the proxy forwards: the RFC 8414 location as is, everything else without /tenant.
    document = stripped.client.get("/.well-known/oauth-authorization-server/tenant").json()
    assert document["issuer"] == issuer
    assert document["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert stripped.client.get("/.well-known/jwks.json").status_code == 200
    assert stripped.login()["access_token"]
    openapi = stripped.client.get("/openapi.json").json()
    assert openapi["servers"] == [{"url": "/tenant"}]
    assert "/tenant/openapi.json" in stripped.client.get("/docs").text


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        ("https://a.example", "https://a.example/.well-known/oauth-authorization-server"),
        ("https://a.example/", "https://a.example/.well-known/oauth-authorization-server"),
        ("https://a.example:8443/t/1", "https://a.example:8443/.well-known/oauth-authorization-server/t/1"),
    ],
)  # fmt: skip
def test_metadata_url_inserts_the_well_known_part_before_the_path(
    issuer: str, expected: str
) -> None:
    assert metadata_url(issuer) == expected
