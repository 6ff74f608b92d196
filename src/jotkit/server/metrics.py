"""Prometheus metrics (text exposition format 0.0.4), kept in process memory.

Counters for the security events an operator watches (logins, failures, refreshes, reuse
detections, revocations) and a histogram of access-token verification latency.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable

__all__ = ["Metrics"]

_LATENCY_BUCKETS_SECONDS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005)

_COUNTERS = {
    "jotkit_logins_total": "Successful logins.",
    "jotkit_login_failures_total": "Failed logins (wrong password, unknown or disabled user).",
    "jotkit_login_throttled_total": "Logins refused by throttling (429).",
    "jotkit_login_throttle_fallbacks_total": (
        "Redis errors in login throttling (the database counts for the next 5 s)."
    ),
    "jotkit_refreshes_total": "Successful refresh token rotations.",
    "jotkit_refresh_failures_total": "Refresh attempts refused (unknown, expired, revoked).",
    "jotkit_refresh_previous_total": (
        "Previous refresh tokens presented within the reuse window (given the current one)."
    ),
    "jotkit_refresh_reuse_detected_total": (
        "Spent refresh tokens replayed, or a DPoP-bound one presented without its key "
        "(families revoked)."
    ),
    "jotkit_dpop_refusals_total": "DPoP proofs refused at /login and /token/refresh.",
    "jotkit_revocations_total": "Revocation feed entries written (jti, sid, user watermark).",
    "jotkit_key_rotations_total": "Signing keys created by rotation.",
    "jotkit_verify_failures_total": "Access tokens refused by the server's guard.",
}


class Metrics:
    """Thread-safe counters and one latency histogram."""

    def __init__(self) -> None:
        """All counters at zero."""
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._buckets = [0] * len(_LATENCY_BUCKETS_SECONDS)
        self._count = 0
        self._sum = 0.0

    def inc(self, name: str, amount: int = 1) -> None:
        """Add to a counter named in _COUNTERS."""
        with self._lock:
            self._counters[name] += amount

    def observe_verify(self, seconds: float) -> None:
        """Record one access-token verification's duration."""
        with self._lock:
            self._count += 1
            self._sum += seconds
            # One bucket per observation; render() accumulates them (Prometheus buckets are
            # cumulative), which keeps this hot-path call to a bisect.
            index = bisect.bisect_left(_LATENCY_BUCKETS_SECONDS, seconds)
            if index < len(self._buckets):
                self._buckets[index] += 1

    def render(self, gauges: Iterable[tuple[str, str, float]] = ()) -> str:
        """The exposition text; ``gauges`` are (name, help, value) read at scrape time."""
        lines: list[str] = []
        with self._lock:
            for name, value in self._counters.items():
                lines += [f"# HELP {name} {_COUNTERS[name]}", f"# TYPE {name} counter"]
                lines.append(f"{name} {value}")
            name = "jotkit_verify_seconds"
            lines += [
                f"# HELP {name} Access token verification latency.",
                f"# TYPE {name} histogram",
            ]
            cumulative = 0
            for bound, count in zip(_LATENCY_BUCKETS_SECONDS, self._buckets, strict=True):
                cumulative += count
                lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
            lines.append(f'{name}_bucket{{le="+Inf"}} {self._count}')
            lines.append(f"{name}_sum {self._sum:.9f}")
            lines.append(f"{name}_count {self._count}")
        for gauge, help_text, reading in gauges:
            lines += [
                f"# HELP {gauge} {help_text}",
                f"# TYPE {gauge} gauge",
                # Integers exactly: :g rounds 1,234,567 to 1.23457e+06.
                f"{gauge} {reading if isinstance(reading, int) else format(reading, 'g')}",
            ]
        return "\n".join(lines) + "\n"
