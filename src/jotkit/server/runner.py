"""uvicorn's ``Server``, with a hook that runs as shutdown begins.

On SIGTERM uvicorn stops accepting connections, waits for open requests up to its graceful
timeout, then cancels what is left: a cancelled request is a plain-text 500, and the ASGI app
is told nothing before that (lifespan shutdown comes after the wait). A held
``GET /revocations`` long-poll would last to that timeout and end as a 500 at every guard on
every deploy; ``jotkit serve`` passes the feed's ``end_polls`` as the hook, so held polls are
answered at once, with ``"closing": true``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

__all__ = ["Server"]


class Server(uvicorn.Server):
    """``uvicorn.Server`` that calls ``on_shutdown()`` before waiting for open requests."""

    def __init__(self, config: uvicorn.Config, *, on_shutdown: Callable[[], None]) -> None:
        """Serve ``config``; ``on_shutdown`` runs on the event loop when shutdown starts."""
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End what would otherwise be cancelled, then shut down as uvicorn does."""
        self._on_shutdown()
        await super().shutdown(sockets)
