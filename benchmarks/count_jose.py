"""Instructions per verify under callgrind: jotkit, the floor, a bare pipeline and the peers.

Wall-clock figures on a shared VM drift with the neighbours (bench_jose.py's asymmetric
overheads read +5 µs one day and +12 µs another on the same CPU model). Instruction counts
do not: callgrind counts the same total for the same binary and inputs whatever else the
machine is doing. This script reads bench_jose.py's verify targets in instructions, so a
change to the hot path can be judged without noise. It says nothing about cache misses, which
is what the wall-clock figures add on top.

One `valgrind --tool=callgrind` run times every phase: the child calls `math.lcm` (which
nothing on these paths calls) between phases, callgrind dumps its counts at each call, and a
phase's dump divided by its calls, less an empty phase's, is the cost of one call. Keys and
tokens are made outside valgrind and are the same for every variant.

    .venv/bin/python benchmarks/count_jose.py                      # HS256 + 7 asymmetric algs
    .venv/bin/python benchmarks/count_jose.py --algs ES256 --peers  # with PyJWT, joserfc, authlib
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import bench_jose as bj
from cryptography.hazmat.primitives import serialization

from jotkit.jose import ALGORITHMS, Key
from jotkit.jose import jwt as jk_jwt

DEFAULT_ALGS = ["RS256", "PS256", "ES256", "ES384", "ES512", "Ed25519", "Ed448"]
CALLS = 300  # per phase; counts are exact, so more calls only dilute the marker's cost
# Fixed claims (bench_jose's are stamped with the clock): the same token in every phase.
CLAIMS = {
    "iss": bj.ISS,
    "sub": "user-1234567890",
    "aud": bj.AUD,
    "exp": 4_102_444_800,
    "iat": 1_700_000_000,
    "jti": "c0ffee00-1234-4bcd-9f00-0123456789ab",
    "scope": "read:items write:items",
}


def _spec(alg: str, with_peers: bool) -> dict[str, Any]:
    """A key and a token for ``alg``, and the variants to count, for the child run."""
    material = bj.material_for(alg)
    if ALGORITHMS[alg].kty == "oct":
        key = Key.from_secret(material, alg=alg)
        secret = material.hex()
    else:
        key = Key.from_cryptography(material, alg=alg)
        secret = material.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    token = jk_jwt.sign(CLAIMS, key)
    variants = ["floor", "jotkit"] + (["bare"] if ALGORITHMS[alg].kty != "oct" else [])
    if with_peers:
        variants += sorted(bj.peer_funcs(alg, material, token, CLAIMS))
    return {"alg": alg, "secret": secret, "token": token, "variants": variants}


def _callable(spec: dict[str, Any], variant: str) -> Any:
    """The function one phase repeats: a floor, jotkit's verify, bare or a peer's."""
    alg, token = spec["alg"], spec["token"]
    if ALGORITHMS[alg].kty == "oct":
        material: Any = bytes.fromhex(spec["secret"])
        pub = Key.from_secret(material, alg=alg)
        _sign_floor, floor = bj.hs_floors(alg, material, token, CLAIMS)
    else:
        material = serialization.load_pem_private_key(spec["secret"].encode(), None)
        pub = Key.from_cryptography(material, alg=alg).public()
        _sign_floor, floor = bj.asym_floors(alg, material, token)
    if variant == "floor":
        return floor
    if variant == "jotkit":
        return lambda: jk_jwt.verify(token, pub, issuer=bj.ISS, audience=bj.AUD)
    if variant == "bare":
        return lambda: (floor(), bj.bare_pipeline(token))
    return bj.peer_funcs(alg, material, token, CLAIMS)[variant][1]


def _child(specs_path: str) -> None:
    """Under callgrind: one phase per (alg, variant), each opened by a math.lcm marker."""
    with open(specs_path) as f:
        specs = json.load(f)
    phases: list[tuple[str, Any]] = [("empty", lambda: None)]
    for spec in specs:
        for variant in spec["variants"]:
            phases.append((f"{spec['alg']} {variant}", _callable(spec, variant)))
    for _name, fn in phases:
        for _ in range(20):  # caches, specialisation and lazy imports settle before counting
            fn()
    for _name, fn in phases:
        math.lcm(1)  # callgrind dumps the previous phase here
        for _ in range(CALLS):
            fn()
    math.lcm(1)
    print(json.dumps([name for name, _ in phases]))


def count(specs: list[dict[str, Any]], valgrind: str) -> dict[tuple[str, str], float]:
    """{(alg, variant): instructions per call}, from one callgrind run of the child."""
    with tempfile.TemporaryDirectory() as tmp:
        specs_path = os.path.join(tmp, "specs.json")
        with open(specs_path, "w") as f:
            json.dump(specs, f)
        out = os.path.join(tmp, "callgrind.out")
        run = subprocess.run(
            [valgrind, "--tool=callgrind", "--dump-before=math_lcm",
             f"--callgrind-out-file={out}", sys.executable, __file__, "--child", specs_path],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        names = json.loads(run.stdout.strip().splitlines()[-1])
        dumps = sorted(glob.glob(out + ".*"), key=lambda path: int(path.rsplit(".", 1)[1]))
        # Dump 1 is start-up; dumps 2.. are the phases, in order; the last holds the exit.
        totals = [_summary(path) / CALLS for path in dumps[1 : 1 + len(names)]]
    empty = totals[0]
    return {
        (name.split()[0], name.split()[1]): total - empty
        for name, total in zip(names[1:], totals[1:], strict=True)
    }


def _summary(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no summary line in {path}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algs", type=lambda text: text.split(","), default=DEFAULT_ALGS)
    parser.add_argument("--peers", action="store_true", help="count PyJWT, joserfc, authlib too")
    args = parser.parse_args()
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("count_jose.py needs valgrind (apt-get install -y valgrind)")
    unknown = set(args.algs) - set(bj.ALGS)
    if unknown:
        parser.error(f"unknown algorithms {sorted(unknown)}")
    algs = ["HS256"] + [alg for alg in args.algs if alg != "HS256"]

    counts = count([_spec(alg, args.peers) for alg in algs], valgrind)

    print("# jotkit JOSE instruction counts (callgrind; instructions per verify)")
    print(f"python:  {sys.version.split()[0]}   libs: " + ", ".join(
        f"{n} {bj._version(n)}" for n in ("jotkit", "cryptography", "orjson")))  # fmt: skip
    print()
    hs_floor = counts["HS256", "floor"]
    hs_jk = counts["HS256", "jotkit"]
    budget = 1.3 * hs_floor
    print(f"HS256 jwt.verify {hs_jk:,.0f}  floor {hs_floor:,.0f}  ratio {hs_jk / hs_floor:.2f}x")
    for peer in bj.PEERS:
        if ("HS256", peer) in counts:
            print(f"  {peer}: {counts['HS256', peer]:,.0f} ({counts['HS256', peer] / hs_jk:.2f}x)")
    print(f"\nasymmetric verify: instructions beside the raw primitive (budget 1.3x HS256 floor "
          f"= {budget:,.0f})")  # fmt: skip
    print(f"{'alg':<8} {'raw':>11} {'jotkit +':>10} {'bare +':>10}  verdict" + "".join(
        f" {peer + ' +':>11}" for peer in bj.PEERS if args.peers))  # fmt: skip
    met = 0
    for alg in algs[1:]:
        raw = counts[alg, "floor"]
        extra = counts[alg, "jotkit"] - raw
        met += extra <= budget
        peers = "".join(
            f" {counts[alg, peer] - raw:11,.0f}" if (alg, peer) in counts else f" {'-':>11}"
            for peer in bj.PEERS
            if args.peers
        )
        print(
            f"{alg:<8} {raw:11,.0f} {extra:10,.0f} {counts[alg, 'bare'] - raw:10,.0f}  "
            f"{'PASS' if extra <= budget else 'FAIL'}{peers}"
        )
    print(f"\n{met}/{len(algs) - 1} asymmetric verifies within the budget, in instructions")


if __name__ == "__main__":
    main()
