"""The tour with DPoP (RFC 9449), in a real headless Chromium against a real ``jotkit serve``.

The page's key pair is WebCrypto ECDSA P-256, made non-extractable and kept in IndexedDB: the
tokens the tour gets are bound to it (``cnf.jkt``), the private key cannot be exported (not
even by a script on the page), the key survives a reload, and an access token copied out of
the page is refused when Python sends it as Bearer or with a proof by another key. With the
server's nonces on, the page retries once with the ``DPoP-Nonce`` it was given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _web_helpers import open_page, screenshot

from jotkit import Key
from jotkit.jose.b64 import b64decode
from jotkit.jose.dpop import make_proof
from servers import ServerProcess, free_port, start_server

# Runs in the page: the stored key pair, straight from IndexedDB (not through the page's code),
# and what WebCrypto says when asked to export its private half.
READ_STORED_KEY = """async () => {
  const database = await new Promise((resolve, reject) => {
    const opening = indexedDB.open("jotkit");
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
  const pair = await new Promise((resolve, reject) => {
    const reading = database.transaction("dpop-keys").objectStore("dpop-keys").get("tour");
    reading.onsuccess = () => resolve(reading.result);
    reading.onerror = () => reject(reading.error);
  });
  database.close();
  let exported = null;
  for (const format of ["jwk", "pkcs8"]) {
    try {
      await crypto.subtle.exportKey(format, pair.privateKey);
      exported = format;
    } catch (error) {
      if (error.name !== "InvalidAccessError") exported = `${format}: ${error.name}`;
    }
  }
  return {
    algorithm: pair.privateKey.algorithm,
    type: pair.privateKey.type,
    extractable: pair.privateKey.extractable,
    usages: pair.privateKey.usages,
    exported,
    publicJwk: await crypto.subtle.exportKey("jwk", pair.publicKey),
  };
}"""


@pytest.fixture(scope="module", params=["plain", "nonces"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"JOTKIT_DPOP_NONCE": "true"} if request.param == "nonces" else {}
    started = start_server(tmp_path_factory.mktemp(f"web-dpop-{request.param}"), env=env)
    yield started
    started.stop()


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(b64decode(token.split(".")[1]))  # type: ignore[no-any-return]


def log_in(page: Any, server: ServerProcess) -> dict[str, Any]:
    """Log in through the tour; the access token's payload as the page shows it."""
    page.get_by_label("Email").fill(server.email)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Log in").click()
    page.locator("#login-output[data-status='200']").wait_for()
    return json.loads(page.locator("#tour-payload").inner_text())  # type: ignore[no-any-return]


def lifted_access_token(page: Any) -> str:
    """The login's access token, copied out of the page (through the decoder's text box)."""
    page.get_by_role("button", name="Open it in the decoder").click()
    return str(page.get_by_label("Token (JWT)").input_value())


def button(page: Any, name: str) -> Any:
    return page.get_by_role("button", name=name, exact=True)


def test_tour_runs_end_to_end_with_dpop(
    page: Any, server: ServerProcess, artifacts: Any, request: pytest.FixtureRequest
) -> None:
    open_page(page, server.url)
    payload = log_in(page, server)
    jkt = payload["cnf"]["jkt"]
    login = page.locator("#login-output").inner_text()
    assert "\nDPoP: eyJ" in login
    assert f"bound to your key (cnf.jkt = {jkt})" in login
    assert '"token_type": "DPoP"' in login
    assert jkt in page.locator("#dpop-key").inner_text()
    if server.env.get("JOTKIT_DPOP_NONCE") == "true":
        assert "first answer: 400 use_dpop_nonce" in login

    button(page, "Call /me").click()
    me = page.locator("#me-output[data-status='200']")
    me.wait_for()
    assert "Authorization: DPoP eyJ" in me.inner_text()
    assert "the proof showed this browser holds the key" in me.inner_text()

    # The /me proof, in the decoder: a proof for GET /me, signed by the key the token names.
    button(page, "Open its DPoP proof in the decoder").click()
    page.locator("#dpop-explained[data-kind='proof']").wait_for()
    assert page.locator("#dpop-details dd[data-claim='htm']").inner_text() == "GET"
    assert (
        page.locator("#dpop-details dd[data-claim='htu']")
        .inner_text()
        .startswith(f"{server.url}/me ")
    )
    assert page.locator("#dpop-details dd[data-claim='jkt']").inner_text().startswith(jkt)

    button(page, "Refresh").click()
    page.locator("#refresh-output[data-status='200']").wait_for()
    refreshed = json.loads(page.locator("#refresh-payload").inner_text())
    assert refreshed["cnf"] == {"jkt": jkt} and refreshed["sid"] == payload["sid"]

    button(page, "Log out").click()
    page.locator("#logout-output[data-status^='2']").wait_for()
    button(page, "Call /me with the old token").click()
    rejected = page.locator("#replay-output[data-status='401']")
    rejected.wait_for()
    assert "Rejected, as it should be" in rejected.inner_text()
    screenshot(page, artifacts, f"tour-dpop-{request.node.callspec.id}")


def test_the_key_is_non_extractable_in_indexeddb_and_survives_a_reload(
    page: Any, server: ServerProcess
) -> None:
    open_page(page, server.url)
    jkt = log_in(page, server)["cnf"]["jkt"]
    stored = page.evaluate(READ_STORED_KEY)
    assert stored["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}
    assert stored["type"] == "private" and stored["usages"] == ["sign"]
    assert stored["extractable"] is False
    assert stored["exported"] is None  # exportKey rejected every format
    public = {name: stored["publicJwk"][name] for name in ("kty", "crv", "x", "y")}
    assert Key.from_jwk(public).thumbprint() == jkt
    page.reload()
    page.wait_for_selector("body[data-ready='true']", state="attached")
    assert log_in(page, server)["cnf"]["jkt"] == jkt
    assert "kept from an earlier visit" in page.locator("#dpop-key").inner_text()


def test_a_token_copied_out_of_the_page_is_refused_elsewhere(
    page: Any, server: ServerProcess
) -> None:
    open_page(page, server.url)
    log_in(page, server)
    token = lifted_access_token(page)
    assert "cnf" in claims_of(token)
    url = f"{server.url}/me"
    as_bearer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert as_bearer.status_code == 401, as_bearer.text
    assert as_bearer.json()["code"] == "ERR_DPOP_BOUND_TOKEN_AS_BEARER"
    proof = make_proof(Key.generate("ES256"), "GET", url, access_token=token)
    other_key = httpx.get(
        url, headers={"Authorization": f"DPoP {token}", "DPoP": proof}, timeout=30
    )
    assert other_key.status_code == 401, other_key.text
    assert other_key.json()["code"] == "ERR_DPOP_JKT_MISMATCH"
    # The page, holding the key, still gets in with the same token.
    button(page, "Call /me").click()
    page.locator("#me-output[data-status='200']").wait_for()


def test_tour_with_dpop_under_a_path_issuer(
    page: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Proofs name {issuer}/login etc.: the page, served at {issuer}/, signs the URLs it calls.
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/tenant"
    tenant = start_server(
        tmp_path_factory.mktemp("web-dpop-tenant"), port=port, env={"JOTKIT_ISSUER": issuer}
    )
    try:
        open_page(page, issuer)
        payload = log_in(page, tenant)
        assert payload["iss"] == issuer and "jkt" in payload["cnf"]
        button(page, "Call /me").click()
        page.locator("#me-output[data-status='200']").wait_for()
        button(page, "Refresh").click()
        page.locator("#refresh-output[data-status='200']").wait_for()
        button(page, "Open its DPoP proof in the decoder").click()
        page.locator("#dpop-explained[data-kind='proof']").wait_for()
        htu = page.locator("#dpop-details dd[data-claim='htu']").inner_text()
        assert htu.startswith(f"{issuer}/me ")
    finally:
        tenant.stop()
