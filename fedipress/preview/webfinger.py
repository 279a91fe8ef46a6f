"""WebFinger as a raw ASGI app, for the dev server; the config may change on each rebuild."""

from __future__ import annotations

from fedipress.config import Config
from fedipress.inbox.http import Receive, Scope, Send
from fedipress.inbox.webfinger import answer_webfinger
from fedipress.preview.server import Response


class WebFingerApp:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.config is None or self.config.fediverse is None:
            status, headers, body = 404, [("Content-Type", "application/json")], b"{}\n"
        elif scope["method"] not in ("GET", "HEAD"):
            status, headers, body = 405, [("Allow", "GET, HEAD")], b""
        else:
            query = scope.get("query_string", b"").decode("latin-1")
            status, headers, body = answer_webfinger(self.config, query)
        await Response(status, tuple(headers), body).send(send, head=scope["method"] == "HEAD")
