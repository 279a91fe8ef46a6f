"""The inbox as a raw ASGI app (uvicorn, `fedipress inbox serve`, the dev server).

Bodies are read with a total deadline (408 after it), a declared Content-Length over the
limit is refused before reading (413), and only SLOW_BODIES bodies may arrive in pieces at
once (503 beyond): connections that announce a big body and trickle it cannot pile up.
"""

from __future__ import annotations

import asyncio
import logging

from fedipress.inbox.http import InboxRequest, InboxResponse, Receive, Scope, Send
from fedipress.inbox.service import InboxService

log = logging.getLogger("fedipress.inbox")
SEND_BUDGET = 5.0  # seconds a serverless request spends sending what it queued
STORE_GRACE = 2.0  # seconds beyond the budget for the store's work, before giving up on it
BODY_TIMEOUT = 10.0  # seconds to receive a whole body (a 1 MB body at 100 kB/s)
SLOW_BODIES = 64  # bodies that may be arriving in several pieces at once
RETRY_AFTER = "10"  # seconds, for the 503 beyond SLOW_BODIES
_CLOSE = (("Connection", "close"),)  # the rest of the body is not read: end the connection


class InboxASGI:
    """Turns ASGI HTTP into InboxRequests; starts the delivery sender with the server
    (lifespan) or, when the host runs no lifespan, with the first request."""

    def __init__(
        self,
        service: InboxService,
        serverless: bool = False,
        body_timeout: float = BODY_TIMEOUT,
        slow_bodies: int = SLOW_BODIES,
    ) -> None:
        """`serverless`: the platform may freeze the process once a response is sent (Vercel),
        so each request sends what it queued before answering, and no sender runs between
        requests (as the Lambda adapter does). `body_timeout`: seconds to receive a whole
        body; `slow_bodies`: how many bodies may be arriving in pieces at once."""
        self.service = service
        self.serverless = serverless
        self.body_timeout = body_timeout
        self.slow_bodies = slow_bodies
        self._slow_reads = 0  # bodies being read in pieces now (one event loop: no lock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not self.serverless:
            self.service.start_sender()
        body = await self._body(scope, receive)
        if body is None:
            return  # the client left: no one to answer
        if isinstance(body, InboxResponse):
            response = body
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
                await self._send_queued()
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        raw.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw})
        head = scope["method"].upper() == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else response.body})

    async def _send_queued(self) -> None:
        """Send what the request queued, within SEND_BUDGET: the drain stops cleanly at it,
        and the rest waits for the next request or the scheduled drain (/ap/hooks/deliver).
        A failure here (the store gone) does not change the answer already decided."""
        try:
            await asyncio.wait_for(
                self.service.sender.drain_and_prune(budget=SEND_BUDGET), SEND_BUDGET + STORE_GRACE
            )
        except TimeoutError:
            log.warning("the store did not finish within %g s after a request", STORE_GRACE)
        except Exception as exc:
            log.warning("sending the queue after a request failed: %s", exc)
        await self.service.after_request()

    async def _body(self, scope: Scope, receive: Receive) -> bytes | InboxResponse | None:
        """The whole body; or the answer when it is too big, too slow or one slow body too
        many; or None when the client disconnected."""
        limit = self.service.options.max_body
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Refused before reading: nothing of a 1 GB upload is received (and no
            # 100 Continue is sent to a client that waits for one).
            log.warning("refused a body of %d bytes: over the %d accepted", declared, limit)
            return _too_large(limit)
        try:
            async with asyncio.timeout(self.body_timeout):
                return await self._read(receive, limit)
        except TimeoutError:
            message = f"the body did not arrive within {self.body_timeout:g} seconds"
            return InboxResponse.error(408, message).with_headers(_CLOSE)

    async def _read(self, receive: Receive, limit: int) -> bytes | InboxResponse | None:
        first = await receive()
        if first["type"] == "http.disconnect":
            return None
        if not first.get("more_body", False):
            return _capped(first.get("body", b""), limit)  # the common case: all at once
        if self._slow_reads >= self.slow_bodies:
            return InboxResponse.error(503, "too many slow request bodies").with_headers(
                (("Retry-After", RETRY_AFTER), *_CLOSE)
            )
        self._slow_reads += 1
        try:
            return await _read_rest(receive, first.get("body", b""), limit)
        finally:
            self._slow_reads -= 1

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


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server has already refused a malformed one
    return None


def _too_large(limit: int) -> InboxResponse:
    return InboxResponse.error(413, f"bodies over {limit} bytes refused").with_headers(_CLOSE)


def _capped(body: bytes, limit: int) -> bytes | InboxResponse:
    return _too_large(limit) if len(body) > limit else body


async def _read_rest(receive: Receive, first: bytes, limit: int) -> bytes | InboxResponse | None:
    """The body after its `first` piece; 413 once it passes `limit` (the rest is not read
    into memory), None when the client disconnected."""
    chunks = [first]
    size = len(first)
    while size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False) and size <= limit:
            return b"".join(chunks)
    return _too_large(limit)
