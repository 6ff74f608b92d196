"""Driving the page the way a person does: by its labels, buttons and visible text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from jotkit.jose import Key
from jotkit.jose.b64 import b64decode, b64encode

KEY_SOURCES = {
    "server": "This server's keys (JWKS)",
    "key": "A public key (JWK, JWKS or PEM)",
    "secret": "A shared secret (HMAC)",
}


def open_page(page: Any, url: str) -> None:
    """Load the page and wait for app.js to have wired it."""
    page.goto(url.rstrip("/") + "/")
    page.wait_for_selector("body[data-ready='true']", state="attached")


def paste_token(page: Any, token: str) -> None:
    page.get_by_label("Token (JWT)").fill(token)


def verify_in_page(
    page: Any,
    source: str,
    *,
    key: str = "",
    secret: str = "",
    encoding: str = "text (UTF-8)",
    issuer: str = "",
    audience: str = "",
) -> tuple[str, str]:
    """Choose a key source, fill it in, press Verify; return (verdict, result text)."""
    page.get_by_label(KEY_SOURCES[source]).check()
    if source == "key":
        page.get_by_label("Public key", exact=True).fill(key)
    elif source == "secret":
        page.get_by_label("Secret", exact=True).fill(secret)
        page.get_by_label("The secret is written as").select_option(label=encoding)
    if issuer or audience:
        if not page.get_by_label("Issuer (iss)").is_visible():
            page.get_by_text("Expected issuer and audience (optional)").click()
        page.get_by_label("Issuer (iss)").fill(issuer)
        page.get_by_label("Audience (aud)").fill(audience)
    # Forget the previous verdict, so the wait below sees this run's.
    page.locator("#verify-result").evaluate(
        "el => { delete el.dataset.verdict; el.replaceChildren(); }"
    )
    page.get_by_role("button", name="Verify").click()
    result = page.locator(
        "#verify-result[data-verdict='valid'], #verify-result[data-verdict='invalid']"
    )
    result.wait_for()
    return str(result.get_attribute("data-verdict")), str(result.inner_text())


def warning_ids(page: Any) -> list[str]:
    return sorted(
        page.locator("#warnings li.warning").evaluate_all("els => els.map(e => e.dataset.warning)")
    )


def screenshot(page: Any, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def compact(header: dict[str, Any], claims: Any, key: Key | None = None) -> str:
    """A compact JWS built by hand, for tokens jwt.sign rightly refuses to make (alg none,
    secret claims, odd headers); signed with ``key`` when one is given."""
    signing_input = f"{b64encode(orjson.dumps(header))}.{b64encode(orjson.dumps(claims))}"
    if key is None:
        return signing_input + "."
    return signing_input + "." + b64encode(key.sign(header["alg"], signing_input.encode()))


def tamper(token: str, **changes: Any) -> str:
    """The token with some claims changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = orjson.loads(b64decode(payload))
    claims.update(changes)
    return f"{header}.{b64encode(orjson.dumps(claims))}.{signature}"


def fresh_claims(lifetime_seconds: int = 900, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "https://issuer.example",
        "sub": "alice",
        "iat": now,
        "exp": now + lifetime_seconds,
    } | extra


def watch(page: Any, problems: list[str]) -> None:
    """Collect what should never happen on the page into ``problems``."""
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # Chromium logs every 4xx/5xx answer as a console error; answers are judged by status
    # below instead, because the tour provokes 401s on purpose.
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} for {response.url}")
            if response.status >= 404 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )
