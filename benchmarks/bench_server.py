"""HTTP load on a real ``jotkit serve``: login/s, refresh/s and /me against a bare endpoint.

The server runs on core 1 (taskset), wrk on core 0, over loopback; every figure is the median
of several wrk runs, and the /me and /healthz runs alternate so that drift hits both alike.

    .venv/bin/python benchmarks/bench_server.py [--quick] [--dpop-only]

Targets (issue 3): refresh >= 1,000/s on one process; /me (verified by the server's guard,
revocation set attached) >= 0.9x the requests/s of /healthz, the same app without auth (sent
the same Authorization header, which it ignores).
Login is argon2id-bound (64 MiB, t=3, p=4: the production default) and reported as is.

/me with DPoP (RFC 9449) against /me with Bearer, alternating: each DPoP request carries a
fresh proof made beforehand (wrk cannot sign ES256), so the server pays what a real client
costs it: the proof's ES256 verify, its checks and the jti insert into the replay cache (the
database here: no redis_url).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

JOTKIT = str(Path(sys.executable).with_name("jotkit"))
EMAIL, PASSWORD = "bench@example.com", "benchmark password"

_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    '\\nRESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"non_2xx":%d,"errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""

_LOGIN = (
    """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"EMAIL","password":"PASSWORD"}'
""".replace("EMAIL", EMAIL).replace("PASSWORD", PASSWORD)
    + _DONE
)

# Each refresh spends its token and returns the next one: a queue shared by the connections
# of the one wrk thread, seeded with more live tokens than there are connections.
_REFRESH = (
    """
local tokens = {}
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
end
request = function()
  local token = table.remove(tokens, 1) or "exhausted"
  return wrk.format("POST", "/token/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end
response = function(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then tokens[#tokens + 1] = token end
end
"""
    + _DONE
)


# A queue of pre-made proofs, one per request; a bound token in the Authorization header.
_DPOP = (
    """
local proofs = {}
function init(args)
  for line in io.lines(args[1]) do proofs[#proofs + 1] = line end
end
local next_proof = 1
request = function()
  local proof = proofs[next_proof] or "exhausted"
  next_proof = next_proof + 1
  return wrk.format("GET", "/me", {["Authorization"] = "DPoP " .. TOKEN, ["DPoP"] = proof})
end
"""
    + _DONE
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: float,
    header: str = "",
    args: tuple[str, ...] = (),
    timeout: float = 5,
) -> dict[str, float]:
    command = [
        "taskset",
        "-c",
        "0",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout}s",
        "-s",
        str(script),
    ]
    if header:
        command += ["-H", header]
    command += [url, *(["--", *args] if args else [])]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    ok = result["requests"] - result["non_2xx"]
    result["ok_per_s"] = ok / (result["duration_us"] / 1e6)
    return result


def _logins(base: str, count: int) -> list[dict[str, str]]:
    with httpx.Client(base_url=base, timeout=120) as client:
        return [
            client.post("/login", json={"email": EMAIL, "password": PASSWORD}).json()
            for _ in range(count)
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, one repeat")
    parser.add_argument("--dpop-only", action="store_true", help="only /me DPoP vs Bearer")
    options = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    seconds, repeats = (3, 1) if options.quick else (8, 3)
    workdir = Path(tempfile.mkdtemp(prefix="jotkit-bench-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "JOTKIT_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
    }
    subprocess.run(
        [JOTKIT, "users", "add", EMAIL, "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        ["taskset", "-c", "1", JOTKIT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"jotkit serve on core 1, wrk on core 0; {seconds} s runs, median of {repeats}")
        print(f"machine: {os.cpu_count()} cores, {_cpu_model()}, Python {sys.version.split()[0]}")
        scripts = {}
        for name, text in (("login", _LOGIN), ("refresh", _REFRESH), ("plain", _DONE)):
            scripts[name] = workdir / f"{name}.lua"
            scripts[name].write_text(text)

        if options.dpop_only:
            _dpop_vs_bearer(base, workdir, scripts["plain"], seconds, repeats)
            return
        print("\n-- login (argon2id, production cost) --")
        for connections in (1, 4):  # each login holds 64 MiB and ~0.3 s of one core
            result = _wrk(
                f"{base}/login",
                scripts["login"],
                connections=connections,
                seconds=max(seconds, 8),
                timeout=30,
            )
            print(
                f"login   c={connections:<3} {result['ok_per_s']:9.1f} /s   "
                f"p50 {result['p50_us'] / 1000:7.1f} ms   p99 {result['p99_us'] / 1000:7.1f} ms"
            )

        print("\n-- refresh (rotation: spend + store successor + sign ES256) --")
        access = ""
        for connections in (1, 32):
            runs = []
            for _ in range(repeats):
                pairs = _logins(base, connections + 8)
                access = pairs[0]["access_token"]
                tokens = workdir / "tokens.txt"
                tokens.write_text("\n".join(p["refresh_token"] for p in pairs) + "\n")
                runs.append(
                    _wrk(
                        f"{base}/token/refresh",
                        scripts["refresh"],
                        connections=connections,
                        seconds=seconds,
                        args=(str(tokens),),
                    )
                )
            best = sorted(runs, key=lambda r: r["ok_per_s"])[len(runs) // 2]
            print(
                f"refresh c={connections:<3} {best['ok_per_s']:9.1f} /s   "
                f"p50 {best['p50_us'] / 1000:7.2f} ms   p99 {best['p99_us'] / 1000:7.2f} ms   "
                f"(non-2xx {best['non_2xx']}) target >= 1000/s at c=32"
            )

        print("\n-- /me (guard: ES256 verify, cache, revocation set) vs /healthz (no auth) --")
        access = _logins(base, 1)[0]["access_token"]
        for connections in (1, 32):
            me, bare = [], []
            for _ in range(repeats):
                # The same Authorization header (ignored) goes to /healthz: the ratio measures
                # the guard, not the header bytes that every token-bearing request carries.
                bare.append(
                    _wrk(
                        f"{base}/healthz",
                        scripts["plain"],
                        connections=connections,
                        seconds=seconds,
                        header=f"Authorization: Bearer {access}",
                    )["ok_per_s"]
                )
                me.append(
                    _wrk(
                        f"{base}/me",
                        scripts["plain"],
                        connections=connections,
                        seconds=seconds,
                        header=f"Authorization: Bearer {access}",
                    )["ok_per_s"]
                )
            ratio = statistics.median(me) / statistics.median(bare)
            print(
                f"c={connections:<3} /healthz {statistics.median(bare):9.0f} req/s   "
                f"/me {statistics.median(me):9.0f} req/s   ratio {ratio:.2f} (target >= 0.90)"
            )
        _dpop_vs_bearer(base, workdir, scripts["plain"], seconds, repeats)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _dpop_vs_bearer(base: str, workdir: Path, plain: Path, seconds: float, repeats: int) -> None:
    from jotkit import Key
    from jotkit.jose.dpop import make_proof

    print("\n-- /me with DPoP (proof verify + jti insert) vs /me with Bearer --")
    key = Key.generate("ES256")
    with httpx.Client(base_url=base, timeout=120) as client:
        proof = make_proof(key, "POST", f"{base}/login")
        answer = client.post(
            "/login", json={"email": EMAIL, "password": PASSWORD}, headers={"DPoP": proof}
        ).json()
    bound = answer["access_token"]
    bearer = _logins(base, 1)[0]["access_token"]
    script = workdir / "dpop.lua"
    script.write_text(_DPOP.replace("TOKEN", json.dumps(bound)))
    per_run = int(seconds * 4000)  # above what one core serves: a run never runs dry
    for connections in (1, 32):
        dpop, plain_me = [], []
        for _ in range(repeats):
            proofs = workdir / "proofs.txt"
            proofs.write_text(
                "\n".join(
                    make_proof(key, "GET", f"{base}/me", access_token=bound) for _ in range(per_run)
                )
                + "\n"
            )
            plain_me.append(
                _wrk(
                    f"{base}/me",
                    plain,
                    connections=connections,
                    seconds=seconds,
                    header=f"Authorization: Bearer {bearer}",
                )["ok_per_s"]
            )
            result = _wrk(
                f"{base}/me", script, connections=connections, seconds=seconds, args=(str(proofs),)
            )
            if result["requests"] >= per_run:
                print(f"  (the run used all {per_run} proofs: the DPoP figure is a floor)")
            dpop.append(result["ok_per_s"])
        ratio = statistics.median(dpop) / statistics.median(plain_me)
        print(
            f"c={connections:<3} /me Bearer {statistics.median(plain_me):9.0f} req/s   "
            f"/me DPoP {statistics.median(dpop):9.0f} req/s   ratio {ratio:.2f}"
        )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
