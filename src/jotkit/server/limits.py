"""Caps on what one request can make the server hold, enforced while it arrives.

Every body this server accepts is a few hundred bytes of JSON or form data; without a cap a
client could make it buffer gigabytes (FastAPI reads a body whole before parsing it). The
head (request line and headers) is capped below the app, in the HTTP protocol, since the
server parses all of it before the app sees any.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from jotkit.server.errors import STATUS, error_response

__all__ = ["BodyLimit", "HeaderLimitProtocol"]


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` gets 413 ``request_too_large``.

    A declared ``Content-Length`` over the cap is refused before the app runs. A chunked body
    is counted as it arrives; past the cap the app sees the client go away, and its answer,
    if it had not started one, is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body cut short; ours follows
            started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # A route reading the cut body may raise (form parsing does) rather than answer.
            if not over or started:
                raise
        if over and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = error_response(
            "request_too_large",
            f"the request body is over the {self.max_bytes}-byte limit",
            headers={"Connection": "close"},
        )
        await answer(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    """The request's Content-Length, or 0 when it has none (the server checked its syntax)."""
    headers: Any = scope.get("headers", ())
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


class HeaderLimitProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with caps on a request's head: 431 past either.

    uvicorn puts no bound on request headers under httptools: one 64 MB Authorization header
    took 6.3 s and 200 MB of memory to parse before the app could refuse it. Here the bytes of
    the request line and headers are counted as they arrive and the parser is never fed more
    than ``max_header_bytes`` of them (twice that for a head pipelined behind another request
    in the same read); a request with more than ``max_header_count`` headers
    is stopped at the first one too many. Either gets 431 (RFC 6585 §5) with the JSON error
    body, and the connection is closed after the rest of what the client sends is discarded
    (up to a bound), so that the client reads the answer instead of a reset.

    ``limited(max_header_bytes, max_header_count)`` makes the class uvicorn is given.
    """

    max_header_bytes = 16384
    max_header_count = 100

    @classmethod
    def limited(cls, max_header_bytes: int, max_header_count: int) -> type[HeaderLimitProtocol]:
        """A subclass with these caps (uvicorn builds the protocol from a class)."""
        return type(
            "HeaderLimitProtocol",
            (cls,),
            {"max_header_bytes": max_header_bytes, "max_header_count": max_header_count},
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between requests too: the next one's head may be arriving
        self._head_bytes = 0
        self._heads_started = 0
        self._refusal: str | None = None
        self._discarded_bytes = 0

    def data_received(self, data: bytes) -> None:
        """Feed the parser, never past ``max_header_bytes`` of one request's head."""
        if self._refusal is not None:
            self._discarded_bytes += len(data)
            if self._discarded_bytes > _DISCARD_BYTES:
                self.transport.close()
            return
        while data and self._refusal is None and not self.transport.is_closing():
            if not self._in_head:
                # Body bytes (BodyLimit caps them). A pipelined head that starts inside them
                # is not counted: it is bounded by one read of the transport (256 KiB).
                super().data_received(data)
                return
            room = self.max_header_bytes - self._head_bytes
            piece, data = data[:room], data[room:]
            started = self._heads_started
            super().data_received(piece)
            if self._heads_started != started:
                # A request ended inside the piece; where its successor's head began there
                # is unknown, so that part goes uncounted (at most one piece: 2x the cap).
                self._head_bytes = 0
            elif self._in_head:
                self._head_bytes += len(piece)
                if self._head_bytes >= self.max_header_bytes:  # full, and the head goes on
                    self._refuse(f"the request headers are over {self.max_header_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count the header; one too many stops the parser (answered by send_400_response)."""
        if len(self.headers) >= self.max_header_count:
            self._refusal = f"the request has more than {self.max_header_count} headers"
            raise _HeadersTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is whole: what follows is body, uncounted here (BodyLimit caps it)."""
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The next request's head starts counting from zero."""
        self._in_head = True
        self._head_bytes = 0
        self._heads_started += 1
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; a 431 when it was our cap that stopped it."""
        if self._refusal is not None:
            refusal, self._refusal = self._refusal, None
            self._refuse(refusal)
        else:
            super().send_400_response(msg)

    def _refuse(self, description: str) -> None:
        body = orjson.dumps({"error": "headers_too_large", "error_description": description})
        head = (
            f"HTTP/1.1 {STATUS['headers_too_large']} Request Header Fields Too Large\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "cache-control: no-store\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self._refusal = description
        # Closing now, with the client's bytes unread, would send a reset that can destroy
        # the answer before it is read: keep reading (and dropping) for a moment first.
        asyncio.get_running_loop().call_later(_LINGER_SECONDS, self.transport.close)


class _HeadersTooLarge(Exception):
    """Raised in a parser callback to stop httptools."""


_DISCARD_BYTES = 1 << 20  # read and dropped after a 431 before the connection is cut
_LINGER_SECONDS = 1.0
