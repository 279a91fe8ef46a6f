"""The inbox as a raw ASGI app (uvicorn, `fedipress inbox serve`, the dev server)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fedipress.inbox.http import InboxRequest, InboxResponse
from fedipress.inbox.service import InboxService

SEND_BUDGET = 5.0  # seconds a serverless request spends sending what it queued
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class InboxASGI:
    """Turns ASGI HTTP into InboxRequests; starts the delivery sender with the server
    (lifespan) or, when the host runs no lifespan, with the first request."""

    def __init__(self, service: InboxService, serverless: bool = False) -> None:
        """`serverless`: the platform may freeze the process once a response is sent (Vercel),
        so each request sends what it queued before answering, and no sender runs between
        requests (as the Lambda adapter does)."""
        self.service = service
        self.serverless = serverless

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not self.serverless:
            self.service.start_sender()
        body = await _read_body(receive, self.service.options.max_body)
        if body is None:
            response = InboxResponse.error(413, "body too large")
        else:
            request = InboxRequest(
                method=scope["method"].upper(),
                path=_full_path(scope),
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=tuple(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                ),
                body=body,
            )
            response = await self.service.handle(request)
            if self.serverless:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.service.sender.drain_and_prune(), SEND_BUDGET)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        raw.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw})
        head = scope["method"].upper() == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if not self.serverless:
                    self.service.start_sender()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.service.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _full_path(scope: Scope) -> str:
    """The path the client asked for. ASGI servers such as uvicorn (and httpx's transport)
    already include `root_path` in `path`; older ones did not (starlette checks the same)."""
    root, path = str(scope.get("root_path", "")), str(scope["path"])
    if not root or path == root or path.startswith(root.rstrip("/") + "/"):
        return path
    return root + path


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` (the rest is not read into memory)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
