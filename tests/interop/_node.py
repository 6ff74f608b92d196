"""node ``jose``, ``oauth4webapi`` and ``dpop``, installed from the npm registry for the session.

The versions are pinned with their integrity hashes in ``node/package-lock.json`` and
installed by ``npm ci`` into a temporary folder once per test session. Without ``node`` or
``npm`` the node tests are skipped with the reason (they fail instead under CI=true).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servers import skip_or_fail

_SCRIPTS = Path(__file__).with_name("node")


@dataclass(frozen=True)
class NodeClients:
    """A folder holding the pinned node packages and the test scripts."""

    folder: Path

    def run(self, script: str, request: Any, timeout: float = 120) -> Any:
        """Run ``node SCRIPT`` with ``request`` as JSON on stdin; its JSON answer."""
        done = subprocess.run(
            ["node", script],
            cwd=self.folder,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start(self, script: str) -> subprocess.Popen[str]:
        """Start ``node SCRIPT`` with line-by-line pipes (see live.mjs)."""
        return subprocess.Popen(
            ["node", script],
            cwd=self.folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def session(self, script: str) -> NodeSession:
        """``node SCRIPT`` answering one JSON line per JSON command line."""
        return NodeSession(self.start(script))


class NodeSession:
    """A running node script: ``ask`` writes one JSON line and reads the answer line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def ask(self, command: dict[str, Any]) -> Any:
        """Send ``command``; its JSON answer (fails with node's stderr if the script ended)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        line = self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            raise AssertionError(f"node ended: {self.process.stderr.read()[-2000:]}")
        return json.loads(line)

    def close(self) -> None:
        """Send quit and wait; kill a script that does not end."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.process.stdin.flush()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def install(folder: Path) -> NodeClients:
    """Copy the scripts and ``npm ci`` the pinned packages into ``folder`` (skip or fail
    without node and npm, or when the registry cannot be reached)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} is not installed (Debian: apt-get install nodejs npm)")
    for source in _SCRIPTS.iterdir():
        shutil.copy(source, folder / source.name)
    installed = subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        skip_or_fail(f"npm ci could not install the node clients: {installed.stderr[-500:]}")
    return NodeClients(folder)
