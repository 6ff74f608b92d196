"""An idle keep-alive connection outlives uvicorn's 5 s default (``keep_alive_timeout_seconds``).

Clients and proxies that reuse connections sent requests on connections the server was
closing after 5 s idle, and lost them with read errors under load.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from servers import ServerProcess

_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: jotkit\r\n\r\n"


def _answer(connection: socket.socket) -> bytes:
    connection.sendall(_REQUEST)
    received = b""
    while b'"ok"' not in received:
        chunk = connection.recv(4096)
        if not chunk:  # the server closed the connection
            return received
        received += chunk
    return received


def test_an_idle_connection_is_kept_past_five_seconds(shared_server: ServerProcess) -> None:
    where = urlsplit(shared_server.url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as connection:
        assert _answer(connection).startswith(b"HTTP/1.1 200")
        time.sleep(6.5)  # idle longer than uvicorn's default keep-alive (5 s)
        assert _answer(connection).startswith(b"HTTP/1.1 200")
