"""Browser fixtures: Debian's headless Chromium driven by Playwright's sync API.

Playwright's own browser download does not work here, so the system ``chromium`` is launched
by path. Without it the tests skip with the reason, except under CI=true where they fail:
CI installs Chromium, and a silent skip there would hide a broken page.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _web_helpers import watch

from jotkit.web import STATIC_DIR

CHROMIUM = Path(os.environ.get("JOTKIT_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium phones home at start-up, which this closed
# network answers by refusing connections (and slow start-ups).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("JOTKIT_ARTIFACTS", Path(__file__).parent / "artifacts"))


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    if not CHROMIUM.exists():
        _skip_or_fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; a script error, a console error (a CSP violation shows up there) or a
    missing file fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    watch(opened, problems)
    yield opened
    context.close()
    assert not problems, problems


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def static_url() -> Iterator[str]:
    """The page's files served as they ship, by a plain static HTTP server on 127.0.0.1
    (a secure context, so WebCrypto is available)."""
    handler = partial(_QuietHandler, directory=str(STATIC_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (JOTKIT_ARTIFACTS, default tests/web/artifacts/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
