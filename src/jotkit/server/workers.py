"""``jotkit serve --workers N``: N server processes sharing one listening socket.

The parent has already migrated the store and set up the signing keys (``build_service``);
it binds the port, forks N workers that each open the store and serve the socket under
uvicorn, and supervises them: a worker that dies is replaced (its in-flight requests are
lost, nothing stored is: every change is one committed transaction), and SIGTERM/SIGINT
stop them all gracefully. Each worker keeps its revocation set in step with the others' by
reading the store's feed every ``feed_poll_seconds`` (``app._follow_store``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from typing import Any

from jotkit.server.app import create_app
from jotkit.server.settings import Settings

__all__ = ["run_workers"]

log = logging.getLogger("jotkit.server")

# A worker that dies within this of its start is not restarted at once: a store that refuses
# every worker must not turn the supervisor into a fork loop.
_RESPAWN_PAUSE_SECONDS = 1.0


def run_workers(settings: Settings, uvicorn_options: dict[str, Any]) -> None:
    """Serve with ``settings.workers`` processes until SIGTERM or SIGINT."""
    listener = _listen(settings.host, settings.port)
    children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, start time)
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                _serve(settings, index, listener, uvicorn_options)
                code = 0
            finally:
                os._exit(code)
        children[pid] = (index, time.monotonic())

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, signal.SIGTERM)

    for index in range(settings.workers):
        spawn(index)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        index, started = children.pop(pid)
        if stopping:
            continue
        log.warning(
            "worker %d (pid %d) ended (%s): starting another",
            index,
            pid,
            _describe(status),
            extra={"audit": {"event": "worker_replaced", "worker": index}},
        )
        time.sleep(max(0.0, started + _RESPAWN_PAUSE_SECONDS - time.monotonic()))
        if not stopping:
            spawn(index)
    listener.close()


def _serve(
    settings: Settings, index: int, listener: socket.socket, options: dict[str, Any]
) -> None:
    import uvicorn

    from jotkit.server.runner import Server

    # The parent's handlers would run here too; uvicorn installs the worker's own.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    app = create_app(settings, worker=index, freeze_heap=True)

    def end_polls() -> None:
        # The worker's service is built by the app's lifespan: absent if it never started.
        service = getattr(app.state, "service", None)
        if service is not None:
            service.feed.http.end_polls()

    Server(uvicorn.Config(app, **options), on_shutdown=end_polls).run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.waitstatus_to_exitcode(status)}"
