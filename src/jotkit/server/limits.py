"""A cap on request bodies, enforced while they arrive, before any of one is held in memory.

Every body this server accepts is a few hundred bytes of JSON or form data; without a cap a
client could make it buffer gigabytes (FastAPI reads a body whole before parsing it).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jotkit.server.errors import error_response

__all__ = ["BodyLimit"]


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
