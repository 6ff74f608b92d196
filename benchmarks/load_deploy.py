"""Sizing the reference deployment (docs/deploy.md): load through nginx against one instance.

Starts exactly what tests/scale/ start (tests/scale/_deployment.py): Debian's nginx with
deploy/nginx.conf in front of two ``jotkit serve`` instances from deploy/jotkit.toml, on a
fresh schema of the local PostgreSQL (127.0.0.1:5432, database ``test``) and a redis-server
of its own. Then, with wrk (Debian's package, on core 0) and alternating so that drift hits
both alike, it measures:

- refresh/s (rotation: spend, store the successor, sign ES256) through nginx to both
  instances, and straight to one instance (the reference point), at c = 32 and 100;
- /healthz through nginx and straight to one instance: what the proxy hop costs.

Every figure is the median of several runs, printed with the ratio nginx / one instance.
Logins are argon2id-bound and scale with cores, not with this layout: argon2id is lowered
here (the tests' 8 MiB, t=1) so that seeding refresh tokens is quick; benchmarks/bench_server.py
measures login/s at the production cost.
Everything shares this machine's cores (nproc is printed), so the ratios say more than the
absolute figures.

    .venv/bin/python benchmarks/load_deploy.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "scale")]

from _deployment import Deployment, start_deployment  # noqa: E402
from bench_server import _DONE, _REFRESH, EMAIL, PASSWORD, _cpu_model, _wrk  # noqa: E402

from servers import postgres_schema  # noqa: E402


async def _login_all(base: str, count: int) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:

        async def one() -> dict[str, Any]:
            async with limit:
                answer = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
            answer.raise_for_status()
            return answer.json()  # type: ignore[no-any-return]

        return await asyncio.gather(*(one() for _ in range(count)))


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda run: run["ok_per_s"])[len(runs) // 2]


def _line(name: str, result: dict[str, float]) -> str:
    return (
        f"{name:<28} {result['ok_per_s']:9.1f} /s   p50 {result['p50_us'] / 1000:8.2f} ms   "
        f"p99 {result['p99_us'] / 1000:8.2f} ms   non-2xx {int(result['non_2xx'])}   "
        f"errors {int(result['errors'])}"
    )


def measure(deployment: Deployment, workdir: Path, *, seconds: int, repeats: int) -> None:
    scripts = {}
    for name, text in (("refresh", _REFRESH), ("plain", _DONE)):
        scripts[name] = workdir / f"{name}.lua"
        scripts[name].write_text(text)
    targets = {
        "nginx, 2 instances": deployment.url,
        "1 instance direct": deployment.instances[0].url,
    }

    print("\n-- refresh (rotation on PostgreSQL) --")
    for connections in (32, 100):
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(repeats):
            for name, base in targets.items():
                pairs = asyncio.run(_login_all(base, connections + 8))
                tokens = workdir / "tokens.txt"
                tokens.write_text("\n".join(p["refresh_token"] for p in pairs) + "\n")
                runs[name].append(
                    _wrk(
                        f"{base}/token/refresh",
                        scripts["refresh"],
                        connections=connections,
                        seconds=seconds,
                        args=(str(tokens),),
                        timeout=30,
                    )
                )
        medians = {name: _median_run(r) for name, r in runs.items()}
        for name, result in medians.items():
            print(_line(f"c={connections:<3} {name}", result))
        ratio = medians["nginx, 2 instances"]["ok_per_s"] / medians["1 instance direct"]["ok_per_s"]
        print(f"c={connections:<3} nginx + 2 instances / 1 instance: {ratio:.2f}x")

    print("\n-- /healthz: the proxy hop --")
    health: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(repeats):
        for name, base in targets.items():
            health[name].append(
                _wrk(f"{base}/healthz", scripts["plain"], connections=32, seconds=seconds)[
                    "ok_per_s"
                ]
            )
    for name, values in health.items():
        print(f"c=32  {name:<22} {statistics.median(values):9.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, one repeat")
    options = parser.parse_args()
    seconds, repeats = (3, 1) if options.quick else (5, 3)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores, {_cpu_model()}, Python {sys.version.split()[0]}")
    print(f"before: {uptime}")
    with tempfile.TemporaryDirectory(prefix="jotkit-load-") as directory:
        workdir = Path(directory)
        with postgres_schema() as database_url:
            deployment = start_deployment(workdir, database_url)
            try:
                deployment.add_user(EMAIL, PASSWORD)
                print(f"wrk on core 0, {seconds} s runs, median of {repeats}")
                measure(deployment, workdir, seconds=seconds, repeats=repeats)
            finally:
                deployment.stop()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"after: {uptime}")


if __name__ == "__main__":
    main()
