"""The request body's size limit: a declared Content-Length over it is refused before a byte is
read, and a chunked body as soon as it passes it. A body within its declared length needs no
counting: the HTTP parser frames it by that length."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"request body over the {max_bytes}-byte limit"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit():
            if int(declared) > self.max_bytes:
                await error_response(413, "validation", self.message)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            """Raised here, the app's exception handlers answer it (FastAPI passes an
            HTTPException from a body read through)."""
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self.message)
            return message

        await self.app(scope, counted, send)
