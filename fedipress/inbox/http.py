"""The framework-free request and response of the inbox function, and the one copy of the
ASGI types that the ASGI adapter and the preview server are written against.

Every adapter (ASGI, AWS Lambda, the dev server) turns its input into an InboxRequest and an
InboxResponse back into its own output; nothing else in fedipress sees a framework type.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Headers = tuple[tuple[str, str], ...]

# ASGI 3 (https://asgi.readthedocs.io/), as starlette's types.py spells it.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class InboxRequest:
    method: str  # upper case
    path: str  # the path as the sender used it, e.g. /ap/inbox (without the query)
    query: str  # the raw query string, without '?'
    headers: Headers  # names as received; look them up case-insensitively
    body: bytes  # the raw bytes: the Digest is computed over exactly these

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def target(self) -> str:
        """path?query, as `(request-target)` and `@target-uri` sign it."""
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(frozen=True)
class InboxResponse:
    status: int
    headers: Headers = ()
    body: bytes = b""

    def with_headers(self, extra: Headers) -> InboxResponse:
        return InboxResponse(self.status, (*self.headers, *extra), self.body)

    @classmethod
    def json(
        cls,
        status: int,
        document: object,
        content_type: str = "application/json",
        extra: Headers = (),
    ) -> InboxResponse:
        body = (json.dumps(document, ensure_ascii=False) + "\n").encode()
        return cls(status, (("Content-Type", content_type), *extra), body)

    @classmethod
    def error(cls, status: int, message: str) -> InboxResponse:
        """Errors as `{"error": ...}` JSON, as Mastodon answers (handy in peers' logs)."""
        return cls.json(status, {"error": message})
