"""The server's revocation set has a bound (revocation_max_entries) and fails closed past it."""

from __future__ import annotations

import time
from pathlib import Path

from servers import DEADLINE_SECONDS, start_server


def _metric(text: str, name: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


def test_a_full_set_answers_503_until_the_entry_it_could_not_hold_expires(
    tmp_path: Path,
) -> None:
    server = start_server(
        tmp_path,
        env={
            "JOTKIT_REVOCATION_MAX_ENTRIES": "2",
            "JOTKIT_ACCESS_TTL_SECONDS": "3",
            "JOTKIT_CLOCK_SKEW_SECONDS": "0",
        },
    )
    try:
        pairs = [server.login() for _ in range(3)]
        for pair in pairs:  # three sessions signed out: three sid entries, room for two
            headers = {"Authorization": f"Bearer {pair['access_token']}"}
            assert server.client.post("/logout", headers=headers).status_code == 204
        fresh = {"Authorization": f"Bearer {server.login()['access_token']}"}
        refused = server.client.get("/me", headers=fresh)
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "ERR_REVOCATION_SET_FULL"
        assert refused.headers["Retry-After"]
        # An RFC 7009 revoke cannot be checked now: 503, not a 200 that revoked nothing.
        revoke = server.client.post("/revoke", data={"token": server.login()["access_token"]})
        assert revoke.status_code == 503, revoke.text
        metrics = server.client.get("/metrics").text
        assert _metric(metrics, "jotkit_revocation_set_full") == 1
        assert _metric(metrics, "jotkit_revocation_entries_not_held") >= 1
        assert _metric(metrics, "jotkit_revocation_entries") == 2
        # Once the third session's tokens have all expired, holding it no longer matters.
        deadline = time.monotonic() + DEADLINE_SECONDS
        while server.client.get("/me", headers=fresh).status_code == 503:
            assert time.monotonic() < deadline, "still refusing after the entry expired"
            time.sleep(0.25)
            fresh = {"Authorization": f"Bearer {server.login()['access_token']}"}
        assert server.client.get("/me", headers=fresh).status_code == 200
        assert _metric(server.client.get("/metrics").text, "jotkit_revocation_set_full") == 0
    finally:
        server.stop()
