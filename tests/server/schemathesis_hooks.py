"""Schemathesis hooks for test_api_schema.py (loaded by ``st run`` through SCHEMATHESIS_HOOKS).

With JOTKIT_ST_CREDENTIALS=1 every operation gets the credential it needs, read from the
environment the test sets: the admin token for POST /users, the introspection secret for
/introspect, and for everything else a user's access token from a fresh login (a case may
log the previous one out). Without it the run is anonymous.

A generated ``DPoP`` header is replaced by a real proof for the request, made by one key for
the whole run: a proof is a signature schemathesis cannot make, and a schema-valid request
must be accepted. Refused proofs have their own tests (test_dpop_server.py).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis

from jotkit import Key
from jotkit.jose.dpop import make_proof

_DPOP_KEY = Key.generate("ES256")

# A held long-poll is correct behaviour but would spend the run's time waiting: the feed's
# own tests cover waiting; here a valid wait is shortened, an invalid one is left alone.
_LONGEST_WAIT_SECONDS = 0.2


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Shorten a valid long-poll ``wait`` of GET /revocations; sign DPoP proofs."""
    headers = case.headers or {}
    for name in [name for name in headers if name.lower() == "dpop"]:
        url = os.environ["JOTKIT_ST_URL"] + case.operation.path
        headers[name] = make_proof(_DPOP_KEY, case.method.upper(), url)
    query = case.query or {}
    wait = query.get("wait")
    if isinstance(wait, bool) or not isinstance(wait, int | float | str):
        return
    try:
        seconds = float(wait)  # the coverage phase sends query values as text
    except ValueError:
        return
    if 0 <= seconds <= 30:
        query["wait"] = min(seconds, _LONGEST_WAIT_SECONDS)


if os.environ.get("JOTKIT_ST_CREDENTIALS") == "1":

    @schemathesis.auth(refresh_interval=None)
    class JotkitCredentials:
        """The credential each operation needs."""

        def get(self, case: Any, context: Any) -> str:
            """A Bearer credential for the operation of ``case``."""
            path = context.operation.path
            if path == "/users":
                return os.environ["JOTKIT_ADMIN_TOKEN"]
            if path == "/introspect":
                return os.environ["JOTKIT_INTROSPECTION_SECRET"]
            answer = httpx.post(
                os.environ["JOTKIT_ST_URL"] + "/login",
                json={
                    "email": os.environ["JOTKIT_ST_EMAIL"],
                    "password": os.environ["JOTKIT_ST_PASSWORD"],
                },
                timeout=30,
            )
            answer.raise_for_status()
            return str(answer.json()["access_token"])

        def set(self, case: Any, data: str, context: Any) -> None:
            """Send it as the Authorization header."""
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
