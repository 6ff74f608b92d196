"""Statements, round trips and CPU per refresh rotation, in process, on SQLite and PostgreSQL.

Throughput over HTTP on a shared 2-core VM moves with the neighbours; what a refresh costs
does not (much): the statements it sends, the round trips they take (PostgreSQL: each
transaction adds BEGIN and COMMIT) and the CPU time ``AuthService.refresh`` spends in this
process (signing included, HTTP not). One thread rotates 20 sessions in turn; the first
``--warm`` rotations are not counted (psycopg prepares a statement on its 5th use).

    .venv/bin/python benchmarks/count_refresh.py               # both stores, 2,000 rotations
    .venv/bin/python benchmarks/count_refresh.py --stores postgresql --rotations 5000
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event

from jotkit.server.app import build_service
from jotkit.server.settings import load_settings

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "count refresh password"


@contextmanager
def database(store: str) -> Iterator[str]:
    """A fresh database of that kind, dropped afterwards."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as scratch:
            yield f"sqlite:///{Path(scratch, 'jotkit.db')}"
        return
    name = f"jotkit_count_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def count(store: str, rotations: int, warm: int) -> dict[str, Any]:
    """Rotate ``rotations`` times after ``warm``; what each rotation cost on average."""
    os.environ.setdefault("JOTKIT_ARGON2_MEMORY_KIB", "8192")
    os.environ.setdefault("JOTKIT_ARGON2_TIME_COST", "1")
    with database(store) as url:
        settings = load_settings(
            environ={k: v for k, v in os.environ.items() if k.startswith("JOTKIT_ARGON2")},
            overrides={"database_url": url, "issuer": "http://jotkit.count"},
        )
        service = build_service(settings)
        try:
            service.add_user("count@example.com", PASSWORD)
            tokens = [
                service.login("count@example.com", PASSWORD, address="-", user_agent="")
                for _ in range(20)
            ]
            current = [pair.refresh_token for pair in tokens]

            def rotate(times: int) -> None:
                for index in range(times):
                    slot = index % len(current)
                    current[slot] = service.refresh(current[slot], address="-").refresh_token

            rotate(warm)
            statements: collections.Counter[str] = collections.Counter()
            transactions = [0]
            engine = service.store.engine

            def on_execute(*args: Any) -> None:
                statements[args[2].split(None, 1)[0].upper()] += 1

            def on_begin(connection: Any) -> None:
                # A connection in autocommit sends no BEGIN: its statement is the transaction.
                if not getattr(connection.connection.dbapi_connection, "autocommit", False):
                    transactions[0] += 1

            event.listen(engine, "before_cursor_execute", on_execute)
            event.listen(engine, "begin", on_begin)
            cpu = time.process_time()
            rotate(rotations)
            cpu = time.process_time() - cpu
            event.remove(engine, "before_cursor_execute", on_execute)
            event.remove(engine, "begin", on_begin)
        finally:
            service.store.close()
    sent = sum(statements.values())
    # On PostgreSQL a transaction is BEGIN and COMMIT on the wire besides its statements;
    # SQLite is in process (no round trip at all).
    trips = sent + 2 * transactions[0] if store == "postgresql" else 0
    return {
        "statements": sent / rotations,
        "kinds": {kind: n / rotations for kind, n in sorted(statements.items())},
        "transactions": transactions[0] / rotations,
        "round_trips": trips / rotations,
        "cpu_ms": 1000 * cpu / rotations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--rotations", type=int, default=2000)
    parser.add_argument("--warm", type=int, default=200)
    options = parser.parse_args()
    print(f"# uptime load: {Path('/proc/loadavg').read_text().split()[:3]}")
    for store in options.stores.split(","):
        got = count(store, options.rotations, options.warm)
        kinds = " ".join(f"{kind} {n:.2f}" for kind, n in got["kinds"].items())
        print(
            f"{store:10} statements/refresh {got['statements']:.2f} ({kinds})  transactions "
            f"{got['transactions']:.2f}  round trips {got['round_trips']:.2f}  "
            f"CPU {got['cpu_ms']:.3f} ms/refresh (in process, HTTP not included)",
            flush=True,
        )


if __name__ == "__main__":
    main()
