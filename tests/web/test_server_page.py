"""The page as ``jotkit serve`` ships it, in a real headless Chromium, against the real server:
decode a login token, verify it against the server's JWKS, see a tampered one fail, and walk
the tour from login to the rejected token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _web_helpers import (
    compact,
    open_page,
    paste_token,
    screenshot,
    tamper,
    verify_in_page,
    watch,
)

from jotkit.jose import Key
from jotkit.jose.b64 import b64decode
from servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = start_server(tmp_path_factory.mktemp("web-server"))
    yield started
    started.stop()


@pytest.fixture
def served_page(page: Any, server: ServerProcess) -> Any:
    open_page(page, server.url)
    return page


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(b64decode(token.split(".")[1]))  # type: ignore[no-any-return]


def test_the_page_is_served_at_the_root(served_page: Any) -> None:
    assert served_page.title() == "jotkit: JWT decoder and token tour"
    assert served_page.get_by_role("heading", name="Decoder").is_visible()
    assert served_page.get_by_role(
        "heading", name="Tour: a token's life on this server"
    ).is_visible()


@pytest.mark.parametrize("path", ["/", "/index.html", "/jose.js", "/style.css"])
def test_the_page_files_carry_security_headers(server: ServerProcess, path: str) -> None:
    headers = server.client.get(path).headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_another_site_cannot_frame_the_page(browser: Any, server: ServerProcess) -> None:
    # Clickjacking the tour's login form: the browser must refuse to render the page framed.
    # (Not the `page` fixture: the refusal is a console error, which that fixture fails on.)
    context = browser.new_context()
    try:
        page = context.new_page()
        refusals: list[str] = []
        page.on("console", lambda message: refusals.append(message.text))
        page.set_content(f'<iframe src="{server.url}/" width="600" height="400"></iframe>')
        page.wait_for_timeout(1000)
        framed = page.frames[1]
        assert framed.title() != "jotkit: JWT decoder and token tour"
        assert framed.locator("#token").count() == 0
        assert any("frame-ancestors" in text or "X-Frame-Options" in text for text in refusals)
    finally:
        context.close()


def test_login_token_verifies_against_the_servers_jwks_without_sending_it(
    served_page: Any, server: ServerProcess, artifacts: Any
) -> None:
    token = server.login()["access_token"]
    sent: list[str] = []
    served_page.on(
        "request",
        lambda request: sent.append(
            f"{request.method} {request.url} {request.headers} {request.post_data or ''}"
        ),
    )
    paste_token(served_page, token)
    header = json.loads(served_page.locator("#header-json").inner_text())
    assert header["alg"] == "ES256"
    assert header["typ"] == "at+jwt"
    assert json.loads(served_page.locator("#payload-json").inner_text())["aud"] == "jotkit"
    verdict, text = verify_in_page(served_page, "server")
    assert verdict == "valid", text
    assert f'ES256 signature verified with the EC key on P-256 (kid "{header["kid"]}")' in text
    assert "audience not checked" in text
    screenshot(served_page, artifacts, "server-token-verified")
    verdict, text = verify_in_page(served_page, "server", issuer=server.url, audience="jotkit")
    assert verdict == "valid", text
    # Verifying fetched the public keys and nothing else; the token itself never left.
    assert [line.split()[:2] for line in sent] == [
        ["GET", f"{server.url}/.well-known/jwks.json"]
    ] * 2
    assert not any(token.split(".")[2] in line for line in sent)


def test_tampered_token_is_invalid_against_the_servers_jwks(
    served_page: Any, server: ServerProcess, artifacts: Any
) -> None:
    token = server.login()["access_token"]
    paste_token(served_page, tamper(token, sub="admin", scope="admin"))
    verdict, text = verify_in_page(served_page, "server")
    assert verdict == "invalid"
    assert "ERR_JWS_SIGNATURE_INVALID" in text
    screenshot(served_page, artifacts, "server-token-tampered")


def test_token_signed_by_another_key_under_the_servers_kid_is_invalid(
    served_page: Any, server: ServerProcess
) -> None:
    token = server.login()["access_token"]
    header = json.loads(b64decode(token.split(".")[0]))
    forged = compact(header, claims_of(token), Key.generate("ES256"))
    paste_token(served_page, forged)
    verdict, text = verify_in_page(served_page, "server")
    assert verdict == "invalid"
    assert "ERR_JWS_SIGNATURE_INVALID" in text


STEPS = ("Call /me", "Refresh", "Log out", "Call /me with the old token")


def button(page: Any, name: str) -> Any:
    """The tour's button called exactly ``name``."""
    return page.get_by_role("button", name=name, exact=True)


def run_tour(page: Any, server: ServerProcess, artifacts: Any, prefix: str) -> None:
    page.get_by_label("Email").fill(server.email)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Log in").click()
    page.locator("#login-output[data-status='200']").wait_for()
    payload = json.loads(page.locator("#tour-payload").inner_text())
    assert payload["aud"] == "jotkit"
    assert payload["iss"] == server.url
    assert "refresh_token" not in payload
    screenshot(page, artifacts, f"{prefix}-1-login")
    # One step at a time: only step 2 is open after login.
    assert [button(page, name).is_enabled() for name in STEPS] == [True, False, False, False]

    button(page, "Call /me").click()
    me = page.locator("#me-output[data-status='200']")
    me.wait_for()
    assert f'"sub": "{payload["sub"]}"' in me.inner_text()
    assert [button(page, name).is_enabled() for name in STEPS] == [True, True, False, False]

    button(page, "Refresh").click()
    page.locator("#refresh-output[data-status='200']").wait_for()
    refreshed = json.loads(page.locator("#refresh-payload").inner_text())
    assert refreshed["jti"] != payload["jti"]
    assert refreshed["sid"] == payload["sid"]  # same session, new token
    # Step 1's panel still shows step 1's token.
    assert json.loads(page.locator("#tour-payload").inner_text()) == payload
    assert [button(page, name).is_enabled() for name in STEPS] == [True, True, True, False]

    page.get_by_role("button", name="Log out").click()
    page.locator("#logout-output[data-status^='2']").wait_for()
    assert page.get_by_role("button", name="Call /me", exact=True).is_disabled()

    page.get_by_role("button", name="Call /me with the old token").click()
    rejected = page.locator("#replay-output[data-status='401']")
    rejected.wait_for()
    assert "Rejected, as it should be" in rejected.inner_text()
    screenshot(page, artifacts, f"{prefix}-2-complete")


def test_tour_runs_end_to_end(served_page: Any, server: ServerProcess, artifacts: Any) -> None:
    run_tour(served_page, server, artifacts, "tour")


def test_tour_on_a_phone(browser: Any, server: ServerProcess, artifacts: Any) -> None:
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    phone = context.new_page()
    problems: list[str] = []
    watch(phone, problems)
    open_page(phone, server.url)
    run_tour(phone, server, artifacts, "tour-phone")
    overflow = phone.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    context.close()
    assert overflow <= 0
    assert not problems, problems


def test_tour_token_opens_in_the_decoder_and_verifies(served_page: Any) -> None:
    served_page.get_by_label("Email").fill("alice@example.com")
    served_page.get_by_label("Password").fill("correct horse battery")
    served_page.get_by_role("button", name="Log in").click()
    served_page.locator("#login-output[data-status='200']").wait_for()
    served_page.get_by_role("button", name="Open it in the decoder").click()
    assert served_page.evaluate("document.activeElement.id") == "token"
    assert served_page.locator("#token-parts .part-signature").inner_text()
    assert verify_in_page(served_page, "server")[0] == "valid"


def test_wrong_password_stops_the_tour_at_login(served_page: Any, server: ServerProcess) -> None:
    served_page.get_by_label("Email").fill(server.email)
    served_page.get_by_label("Password").fill("wrong password")
    served_page.get_by_role("button", name="Log in").click()
    output = served_page.locator("#login-output[data-status^='4']")
    output.wait_for()
    assert "Failed" in output.inner_text()
    assert "wrong password" not in output.inner_text()
    assert served_page.get_by_role("button", name="Call /me", exact=True).is_disabled()


def test_api_docs_render_with_no_request_leaving_the_server(
    page: Any, server: ServerProcess, artifacts: Any
) -> None:
    # /docs loaded Swagger UI from a CDN and was blank offline; every request must now stay
    # on this server, and the operations must render from /openapi.json.
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{server.url}/docs")
    page.locator(".swagger-ui .opblock-summary-path", has_text="/login").first.wait_for()
    assert "jotkit auth server" in page.locator(".swagger-ui .info .title").inner_text()
    screenshot(page, artifacts, "api-docs")
    assert not elsewhere, elsewhere
