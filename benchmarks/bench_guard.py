"""The guard under real HTTP load: FastAPI + uvicorn on one core, wrk on the other.

Same run, same endpoint (``GET /hello`` answering a small JSON object), one uvicorn process per
variant pinned to core 1 (``taskset -c 1``), wrk pinned to core 0:

  (a) bare          no authentication at all: the ceiling. The client sends it the same
                    Authorization header as (b) (ignored), so that the ratio measures the guard
                    and not the ~600 header bytes every token-bearing request carries;
                    ``bare-no-header`` shows what those bytes cost on their own;
  (b) guard         ``Depends(guard.fastapi_dependency())`` with a RevocationSet of 10,000
                    entries kept current by a live RedisSubscriber (the feed attached)
                    (ES256 token, and an HS256 variant), the endpoint reading the Principal; and
                    GuardMiddleware in front of the very endpoint of (a), unchanged;
  (c) redis-session the classic server-side session: an opaque id in the Authorization header,
                    looked up with redis-py asyncio ``GET`` in the real Redis at 127.0.0.1:6379;
  (d) pyjwt         PyJWT ``decode`` (ES256 / HS256, exp + iss + aud) in a dependency: the peer.

wrk sends the same token on every request, so the guard answers from the Verifier cache after
the first one (two clock comparisons and three revocation dict lookups; the signature is not
checked again): ES256 and HS256 cost the guard the same. That is the steady state of a real
resource server, where each token is presented many times in its 15-minute life; PyJWT has
no such cache and pays the signature every time.

The figure per variant is the median req/s of ``--runs`` runs (variants interleaved), and the
ratios guard/bare (target >= 0.9) and guard/redis-session (target >= 1.8) are printed with
PASS/FAIL. See ../shared/BENCHMARKING.md.

    .venv/bin/python benchmarks/bench_guard.py                 # 5 runs x 5 s per variant
    .venv/bin/python benchmarks/bench_guard.py --quick         # 2 runs x 2 s, a smoke test
"""

# No ``from __future__ import annotations`` here, on purpose: the endpoints are defined inside
# make_app() and FastAPI must resolve their annotations (local dependencies) at runtime.
import argparse
import datetime
import functools
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson

ISSUER = "https://auth.bench.example"
AUDIENCE = "jotkit"
SESSION_ID = "bench-session-" + "0" * 32
SERVER_CORE = "1"
CLIENT_CORE = "0"
REVOCATION_ENTRIES = 10_000

# (name, token kind the client sends) - the server side of each is built in make_app().
VARIANTS: list[tuple[str, str]] = [
    ("bare", "es256"),
    ("bare-no-header", "none"),
    ("guard-es256", "es256"),
    ("guard-hs256", "hs256"),
    ("guard-es256-middleware", "es256"),
    ("redis-session", "session"),
    ("pyjwt-es256", "es256"),
    ("pyjwt-hs256", "hs256"),
]


# -- the server side (runs in the uvicorn subprocess) --------------------------------------


def make_app(variant: str, keys: dict[str, Any]) -> Any:
    """The FastAPI app of one variant; ``keys`` holds the public JWK and the HMAC JWK."""
    from fastapi import Depends, FastAPI, HTTPException, Request

    from jotkit import Key
    from jotkit.guard import Guard, Principal
    from jotkit.guard.asgi import GuardMiddleware, install_error_handler
    from jotkit.revocation import Revocation, RevocationSet
    from jotkit.revocation.redis import RedisSubscriber

    app = FastAPI()
    if variant in ("bare", "bare-no-header"):

        @app.get("/hello")
        async def hello() -> dict[str, str]:
            return {"hello": "world"}

        return app

    if variant.startswith("guard"):
        now = time.time()
        revocations = RevocationSet(
            Revocation("jti", uuid.uuid4().hex, now + 900) for _ in range(REVOCATION_ENTRIES)
        )
        key = Key.from_jwk(keys["hs256" if variant == "guard-hs256" else "es256"])
        # The feed attached for real: a RedisSubscriber thread keeps the set current (on a
        # prefix of its own, so no publisher: the subscriber idles as in a quiet minute).
        feed = RedisSubscriber(
            "redis://127.0.0.1:6379/0", revocations, prefix=f"jotkit-bench-{uuid.uuid4().hex}"
        )
        guard = Guard(issuer=ISSUER, audience=AUDIENCE, keys=key, revocation=revocations, feed=feed)
        guard.start()
        install_error_handler(app)
        if variant == "guard-es256-middleware":
            app.add_middleware(GuardMiddleware, guard=guard)

            # The very endpoint of (a), now behind the guard: every request is authenticated
            # (and refused without a valid, unrevoked token) before it reaches the endpoint;
            # an endpoint that wants the claims reads request.state.claims.
            @app.get("/hello")
            async def hello_mw() -> dict[str, str]:
                return {"hello": "world"}

            return app

        user = Annotated[Principal, Depends(guard.fastapi_dependency())]

        @app.get("/hello")
        async def hello_guard(claims: user) -> dict[str, str]:  # type: ignore[valid-type]
            return {"hello": claims.sub}  # type: ignore[attr-defined]

        return app

    if variant == "redis-session":
        import redis.asyncio as redis

        client = redis.Redis(host="127.0.0.1", port=6379)

        async def session(request: Request) -> dict[str, Any]:
            authorization = request.headers.get("authorization", "")
            scheme, _, session_id = authorization.partition(" ")
            if scheme.lower() != "bearer" or not session_id:
                raise HTTPException(401)
            stored = await client.get(f"session:{session_id}")
            if stored is None:
                raise HTTPException(401)
            return orjson.loads(stored)  # type: ignore[no-any-return]

        @app.get("/hello")
        async def hello_session(
            stored: Annotated[dict[str, Any], Depends(session)],
        ) -> dict[str, str]:
            return {"hello": stored["sub"]}

        return app

    import jwt as pyjwt

    if variant == "pyjwt-es256":
        pyjwt_key: Any = pyjwt.PyJWK(keys["es256"]).key
        algorithm = "ES256"
    else:
        pyjwt_key = pyjwt.PyJWK(keys["hs256"]).key
        algorithm = "HS256"

    async def decoded(request: Request) -> dict[str, Any]:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise HTTPException(401)
        try:
            return pyjwt.decode(  # type: ignore[no-any-return]
                token,
                pyjwt_key,
                algorithms=[algorithm],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except pyjwt.PyJWTError:
            raise HTTPException(401) from None

    @app.get("/hello")
    async def hello_pyjwt(claims: Annotated[dict[str, Any], Depends(decoded)]) -> dict[str, str]:
        return {"hello": claims["sub"]}

    return app


def serve(variant: str, port: int, keys_json: str) -> None:
    """Run one variant's app under uvicorn (uvloop + httptools, no access log)."""
    import uvicorn

    app = make_app(variant, orjson.loads(keys_json))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


# -- the driver --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_tokens() -> tuple[dict[str, Any], dict[str, str]]:
    """Keys (public ES256 JWK, HMAC JWK) for the servers and one token of each kind."""
    from jotkit import Key, jwt

    es256 = Key.generate("ES256", kid="bench-es256")
    hs256 = Key.generate("HS256", kid="bench-hs256")
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "sid": uuid.uuid4().hex,
        "client_id": "bench",
        "scope": "read write",
    }
    tokens = {
        "none": "",
        "es256": jwt.sign(claims, es256, header={"typ": "at+jwt"}),
        "hs256": jwt.sign(claims, hs256, header={"typ": "at+jwt"}),
        "session": SESSION_ID,
    }
    keys = {"es256": es256.public().to_jwk(), "hs256": hs256.to_jwk(private=True)}
    return keys, tokens


def seed_redis_session() -> None:
    """Store the session the redis-session variant looks up (real Redis, 1 hour TTL)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    client.set(f"session:{SESSION_ID}", orjson.dumps({"sub": "user-1", "scope": "read"}), ex=3600)
    client.close()


def start_server(variant: str, keys_json: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = ["taskset", "-c", SERVER_CORE, sys.executable, __file__, "--serve", variant]
    command += ["--port", str(port)]
    process = subprocess.Popen(
        command, env={**os.environ, "BENCH_GUARD_KEYS": keys_json}, stderr=subprocess.PIPE
    )
    return process, f"http://127.0.0.1:{port}/hello"


def wait_ready(process: subprocess.Popen[bytes], url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {url} exited: {process.stderr and process.stderr.read()}")
        try:
            answer = httpx.get(url, headers=headers, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if answer.status_code != 200:
            raise SystemExit(f"{url} answered {answer.status_code}: {answer.text}")
        return
    raise SystemExit(f"{url} did not start")


def run_wrk(url: str, token: str, seconds: float, connections: int) -> float:
    """One wrk run; its req/s. Any non-2xx answer or socket error aborts the benchmark."""
    command = ["taskset", "-c", CLIENT_CORE, "wrk", "-t1", f"-c{connections}"]
    command += [f"-d{seconds:g}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors against {url}:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    return float(match.group(1))


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 runs of 2 s: a smoke test")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, os.environ["BENCH_GUARD_KEYS"])
        return
    if args.quick:
        args.runs, args.seconds = 2, 2
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install -y wrk util-linux)")
    keys, tokens = make_tokens()
    seed_redis_session()
    keys_json = orjson.dumps(keys).decode()
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    results: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
    try:
        for name, _ in VARIANTS:
            servers[name] = start_server(name, keys_json)
        for name, kind in VARIANTS:
            wait_ready(*servers[name], tokens[kind])
            run_wrk(servers[name][1], tokens[kind], 1, args.connections)  # warm-up
        for run in range(args.runs):
            for name, kind in VARIANTS:  # interleaved: a noisy minute hits every variant
                results[name].append(
                    run_wrk(servers[name][1], tokens[kind], args.seconds, args.connections)
                )
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    finally:
        for process, _ in servers.values():
            process.terminate()
        for process, _ in servers.values():
            process.wait(10)
    report(results, args)


def report(results: dict[str, list[float]], args: argparse.Namespace) -> None:
    median: Callable[[str], float] = lambda name: statistics.median(results[name])  # noqa: E731
    print(f"\nbench_guard {datetime.date.today()} on {machine()}")
    print(
        f"FastAPI + uvicorn on core {SERVER_CORE}, wrk -t1 -c{args.connections} on core "
        f"{CLIENT_CORE}; median of {args.runs} runs x {args.seconds:g} s\n"
    )
    bare = median("bare")
    print(f"{'variant':<26}{'req/s':>10}{'x bare':>9}   runs")
    for name, _ in VARIANTS:
        runs = " ".join(f"{value:.0f}" for value in results[name])
        print(f"{name:<26}{median(name):>10.0f}{median(name) / bare:>9.2f}   {runs}")

    def paired(name: str, reference: str) -> float:
        # The ratio within each run (variants measured seconds apart), then the median:
        # on a shared machine the load drifts between runs far more than within one.
        return statistics.median(
            mine / theirs for mine, theirs in zip(results[name], results[reference], strict=True)
        )

    targets = [
        ("guard-es256", "bare", 0.9),
        ("guard-es256", "redis-session", 1.8),
        ("guard-es256-middleware", "bare", 0.9),
        ("guard-es256-middleware", "redis-session", 1.8),
        ("guard-es256", "pyjwt-es256", None),
        ("guard-hs256", "pyjwt-hs256", None),
    ]
    print(f"\n{'ratio (median of per-run ratios)':<44}")
    for name, reference, target in targets:
        ratio = paired(name, reference)
        goal = f"  target >= {target:g}: {verdict(ratio >= target)}" if target else ""
        print(f"{name + ' / ' + reference:<44}{ratio:>6.2f}{goal}")
    micro()


def micro() -> None:
    """In-process cost per request of the check alone (best of 5, one core): the part of
    the HTTP figures that is ours, and far less sensitive to a busy machine than wrk."""
    import timeit

    import jwt as pyjwt

    from jotkit import Key
    from jotkit.guard import Guard
    from jotkit.revocation import Revocation, RevocationSet

    os.sched_setaffinity(0, {int(SERVER_CORE)})
    keys, tokens = make_tokens()
    now = time.time()
    revocations = RevocationSet(
        Revocation("jti", uuid.uuid4().hex, now + 900) for _ in range(REVOCATION_ENTRIES)
    )
    rows: list[tuple[str, Callable[[], Any]]] = []
    for alg in ("es256", "hs256"):
        key = Key.from_jwk(keys[alg])
        guard = Guard(issuer=ISSUER, audience=AUDIENCE, keys=key, revocation=revocations)
        header = f"Bearer {tokens[alg]}"
        fresh = Guard(issuer=ISSUER, audience=AUDIENCE, keys=key, cache_size=0)
        peer_key = pyjwt.PyJWK(keys[alg]).key
        rows += [
            (f"guard.authenticate {alg}, cached", lambda g=guard, h=header: g.authenticate(h)),
            (f"guard.authenticate {alg}, no cache", lambda g=fresh, h=header: g.authenticate(h)),
            (
                f"PyJWT decode {alg}",
                functools.partial(
                    pyjwt.decode,
                    tokens[alg],
                    peer_key,
                    algorithms=[alg.upper()],
                    audience=AUDIENCE,
                    issuer=ISSUER,
                    options={"require": ["exp", "iat", "sub", "jti"]},
                ),
            ),
        ]
    print(f"\n{'in-process, per request':<44}{'us/op':>8}")
    for label, call in rows:
        number = 200
        while min(timeit.repeat(call, number=number, repeat=1)) < 0.2:
            number *= 2
        best = min(timeit.repeat(call, number=number, repeat=5)) / number
        print(f"{label:<44}{best * 1e6:>8.1f}")


if __name__ == "__main__":
    main()
