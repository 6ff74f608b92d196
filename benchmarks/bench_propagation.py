"""Revocation propagation latency: from the revoke call to rejection at a verifier.

Not a test: it prints figures. One run measures, with the same machine load:

1. reference: a raw redis-py PUBLISH until a raw pub/sub listener thread has it (the
   transport's own cost, not a strict floor: it polls the same way our subscriber does);
2. ``RedisPublisher.publish`` -> ``RedisSubscriber`` -> ``RevocationSet.is_revoked`` rejects;
3. a real ``jotkit serve`` with JOTKIT_REDIS_URL: ``POST /logout`` -> Redis -> subscriber rejects;
4. the same server without Redis: ``POST /logout`` -> ``GET /revocations`` long-poll
   (``HttpFeedSubscriber``) rejects.

Each revocation is timed from just before the call to the first ``is_revoked`` check that
rejects (checked every ~50 µs, so figures carry that much resolution). Redis is a private
redis-server on a free port (no persistence), so nothing touches the shared one. Nothing is
pinned: the bench, redis-server and ``jotkit serve`` all take part, on a 2-core machine.
Targets: Redis p99 <= 50 ms; HTTP feed p99 <= 1 s.

    .venv/bin/python benchmarks/bench_propagation.py            # 300 revocations per path
    .venv/bin/python benchmarks/bench_propagation.py --quick    # 50, for a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from jotkit.jose.errors import RevokedToken
from jotkit.jose.jwt import peek
from jotkit.revocation import Revocation, RevocationSet
from jotkit.revocation.http import HttpFeedSubscriber
from jotkit.revocation.redis import RedisPublisher, RedisSubscriber

# The lead's real-server helper (a free port, a SQLite file, `jotkit users add` + `serve`).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import ServerProcess, free_port, start_server

REDIS_TARGET_P99_MS = 50.0
HTTP_TARGET_P99_MS = 1000.0
_POLL_SECONDS = 50e-6


def wait_rejected(revocations: RevocationSet, claims: dict[str, Any], started: float) -> float:
    """Spin until the set rejects ``claims``; milliseconds since ``started``."""
    deadline = started + 30
    while True:
        try:
            revocations.is_revoked(claims)
        except RevokedToken:
            return (time.perf_counter() - started) * 1000
        now = time.perf_counter()
        if now > deadline:
            raise SystemExit(f"revocation never arrived: {claims}")
        time.sleep(_POLL_SECONDS)  # also lets the subscriber thread have the GIL


def summary(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cut[49], "p90": cut[89], "p99": cut[98], "max": ordered[-1]}


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port, no persistence; killed afterwards."""
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server not found (Debian: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        yield url
    finally:
        client.close()
        process.kill()
        process.wait()


def bench_raw_pubsub(url: str, count: int) -> list[float]:
    """The reference: PUBLISH until a raw redis-py listener thread has the message."""
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe("bench:floor")
    pubsub.get_message(timeout=5)  # the subscribe confirmation
    received = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            if pubsub.get_message(timeout=0.5) is not None:
                received.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    latencies = []
    for i in range(count):
        received.clear()
        started = time.perf_counter()
        client.publish("bench:floor", str(i))
        while not received.is_set():
            time.sleep(_POLL_SECONDS)
        latencies.append((time.perf_counter() - started) * 1000)
    stop.set()
    listener.join()
    pubsub.close()
    client.close()
    return latencies


def bench_publisher(url: str, count: int) -> list[float]:
    """RedisPublisher.publish -> RedisSubscriber -> RevocationSet rejects."""
    revocations = RevocationSet()
    latencies = []
    with RedisPublisher(url, prefix="bench") as publisher:
        publisher.reseed([])
        with RedisSubscriber(url, revocations, prefix="bench") as subscriber:
            subscriber.wait_ready(30)
            for cursor in range(1, count + 1):
                entry = Revocation("jti", f"jti-{cursor}", time.time() + 600, cursor=cursor)
                started = time.perf_counter()
                publisher.publish(entry)
                latencies.append(wait_rejected(revocations, {"jti": entry.value}, started))
    return latencies


def logouts(
    server: ServerProcess, revocations: RevocationSet, count: int, label: str
) -> list[float]:
    """Log in ``count`` sessions first (argon2 is not what is measured), then log each out."""
    print(f"# {label}: logging in {count} sessions first")
    pairs = [server.login() for _ in range(count)]
    latencies = []
    for pair in pairs:
        claims = peek(pair["access_token"])[1]
        headers = {"Authorization": f"Bearer {pair['access_token']}"}
        started = time.perf_counter()
        answer = server.client.post("/logout", headers=headers)
        if answer.status_code not in (200, 204):
            raise SystemExit(f"/logout answered {answer.status_code}: {answer.text}")
        latencies.append(wait_rejected(revocations, claims, started))
    return latencies


def bench_server_redis(url: str, count: int, workdir: Path) -> list[float]:
    """jotkit serve (JOTKIT_REDIS_URL) POST /logout -> Redis -> RedisSubscriber rejects."""
    server = start_server(workdir, env={"JOTKIT_REDIS_URL": url})
    revocations = RevocationSet()
    try:
        with RedisSubscriber(url, revocations, prefix="jotkit") as subscriber:
            subscriber.wait_ready(30)
            return logouts(server, revocations, count, "server + Redis")
    finally:
        server.stop()


def bench_server_http(count: int, workdir: Path) -> list[float]:
    """jotkit serve POST /logout -> GET /revocations long-poll -> HttpFeedSubscriber rejects."""
    server = start_server(workdir)
    revocations = RevocationSet()
    try:
        with HttpFeedSubscriber(server.url, revocations, wait_seconds=25) as feed:
            feed.wait_ready(30)
            return logouts(server, revocations, count, "server + HTTP feed")
    finally:
        server.stop()


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="50 revocations per path")
    parser.add_argument("--count", type=int, help="revocations per path (default 300)")
    parser.add_argument("--no-server", action="store_true", help="skip the jotkit serve rows")
    options = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    count = options.count or (50 if options.quick else 300)

    print(f"# revocation propagation, {count} revocations per path")
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    rows: list[tuple[str, list[float], float | None]] = []
    with private_redis() as url, tempfile.TemporaryDirectory() as scratch:
        runs: list[tuple[str, Callable[[], list[float]], float | None]] = [
            (
                "reference: raw PUBLISH -> listener thread",
                lambda: bench_raw_pubsub(url, count),
                None,
            ),
            (
                "RedisPublisher -> RedisSubscriber",
                lambda: bench_publisher(url, count),
                REDIS_TARGET_P99_MS,
            ),
        ]
        if not options.no_server:
            runs += [
                (
                    "serve POST /logout -> Redis -> subscriber",
                    lambda: bench_server_redis(url, count, Path(scratch, "redis")),
                    REDIS_TARGET_P99_MS,
                ),
                (
                    "serve POST /logout -> HTTP long-poll",
                    lambda: bench_server_http(count, Path(scratch, "http")),
                    HTTP_TARGET_P99_MS,
                ),
            ]
        for label, run, target in runs:
            Path(scratch, "redis").mkdir(exist_ok=True)
            Path(scratch, "http").mkdir(exist_ok=True)
            rows.append((label, run(), target))

    reference_p50 = summary(rows[0][1])["p50"]
    print(f"\n{'path':44} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50/ref':>9}")
    for label, latencies, target in rows:
        figures = summary(latencies)
        verdict = ""
        if target is not None:
            verdict = f"  target p99 <= {target:g} ms: "
            verdict += "PASS" if figures["p99"] <= target else "FAIL"
        print(
            f"{label:44} {figures['p50']:8.2f} {figures['p90']:8.2f} {figures['p99']:8.2f} "
            f"{figures['max']:8.2f} {figures['p50'] / reference_p50:8.1f}x{verdict}"
        )


if __name__ == "__main__":
    main()
