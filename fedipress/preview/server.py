"""The preview server: a raw ASGI app that serves a built site folder with the deployed
site's headers (fedipress.hosting), and reloads open tabs after each rebuild.

The live-reload script is added to HTML responses here, on the way out; it is never
written to the built files. Reads files, never writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from fedipress.hosting import HOST_FILES, HeaderRule, RedirectRule, match_redirect
from fedipress.hosting import response_headers as host_headers
from fedipress.inbox.http import ASGIApp, Receive, Scope, Send

LIVE_PREFIX = "/_fedipress/"
EVENTS_PATH = LIVE_PREFIX + "events"
SCRIPT_PATH = LIVE_PREFIX + "live.js"
# Deployed CSS may be cached for an hour; a preview must show every save, so the dev server
# asks browsers to revalidate everything (a cheap 304 thanks to the ETag).
DEV_CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    async def send(self, send: Send, head: bool = False) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        if self.status != 304:
            raw.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if head else self.body})


def text_response(status: int, text: str, *headers: tuple[str, str]) -> Response:
    return Response(
        status, (("Content-Type", "text/plain; charset=utf-8"), *headers), text.encode()
    )


# --- host names ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowedHosts:
    """The Host headers the preview answers to. A page on some other name that resolves to
    this machine (DNS rebinding) would otherwise reach the inbox, which may fetch private
    addresses; the browser sends that other name, so it is refused here."""

    pairs: frozenset[tuple[str, int | None]]  # (host name, port); None: no port given
    any_ip_port: int | None = None  # listening on every address: any IP literal on this port

    @classmethod
    def for_server(cls, host: str, port: int, base_url: str) -> AllowedHosts:
        """The loopback names, the address `serve` listens on, with its port, and the
        --base-url host, as a browser or a proxy in front of the preview would send them."""
        names = {"127.0.0.1", "localhost", "::1", host.strip("[]").lower()}
        pairs: set[tuple[str, int | None]] = {(name, port) for name in names}
        if port == 80:
            pairs |= {(name, None) for name in names}
        base = urlsplit(base_url)
        if base.hostname:
            default = 443 if base.scheme == "https" else 80
            pairs |= {(base.hostname, base.port or default), (base.hostname, base.port)}
        wildcard = host.strip("[]") in ("0.0.0.0", "::", "")
        return cls(frozenset(pairs), port if wildcard else None)

    def allows(self, header: str) -> bool:
        if not header or any(c in header for c in "/\\?#@ \t"):
            return False
        try:
            parts = urlsplit("//" + header)
            name, port = parts.hostname, parts.port
        except ValueError:  # a port that is not a number, an unclosed '['
            return False
        if not name:
            return False
        if (name, port) in self.pairs:
            return True
        return self.any_ip_port is not None and port == self.any_ip_port and _is_ip(name)


def _is_ip(name: str) -> bool:
    """An address, not a name: DNS never answers for it, so it cannot be rebound."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# --- live reload -------------------------------------------------------------------------

LIVE_SCRIPT = """\
// fedipress serve: reload this tab after each rebuild; show build errors over the page.
(() => {
  const me = document.currentScript;
  const build = me ? me.dataset.build : "";
  const events = new EventSource(EVENTS_URL);
  events.addEventListener("hello", (e) => {
    if (build && e.data !== build) location.reload();  // rebuilt while this tab was away
  });
  events.addEventListener("reload", () => location.reload());
  events.addEventListener("error", (e) => {
    if (!(e instanceof MessageEvent)) return;  // a dropped connection: EventSource retries
    if (document.getElementById("fedipress-build-error")) return;
    let box = document.getElementById("fedipress-error-overlay");
    if (!box) {
      box = document.createElement("div");
      box.id = "fedipress-error-overlay";
      box.setAttribute("role", "alert");
      Object.assign(box.style, {
        position: "fixed", inset: "0", zIndex: "2147483647", overflow: "auto",
        background: "rgba(20, 0, 0, 0.97)", color: "#fff", padding: "2rem",
        font: "14px/1.5 ui-monospace, monospace", whiteSpace: "pre-wrap",
      });
      document.body.appendChild(box);
    }
    box.textContent = "fedipress: the build failed\\n\\n" + e.data;  // text, never HTML
  });
})();
""".replace("EVENTS_URL", json.dumps(EVENTS_PATH))

ERROR_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Build failed · fedipress</title>
<style>
body { margin: 0; padding: 2rem; font: 16px/1.5 system-ui, sans-serif;
  background: #1b0b0b; color: #f5f5f5; }
pre { white-space: pre-wrap; font: 14px/1.5 ui-monospace, monospace; background: #2a1212;
  padding: 1rem; border-radius: 6px; }
</style>
</head>
<body>
<h1>The build failed</h1>
<pre id="fedipress-build-error">{error}</pre>
<p>Fix the file and save it: this page reloads by itself.</p>
</body>
</html>
"""


def _sse(event: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n".encode()


class LiveReload:
    """The state of the latest build, and the event stream that tells open tabs about it.

    The rebuild loop calls `build_started` / `build_finished` on the server's event loop;
    requests read the same state there, so no locks are needed."""

    def __init__(self, heartbeat: float = 15.0) -> None:
        self.build_id = 1  # which build the files on disk come from
        self.error: str | None = None
        self.built = False  # until the first build ends, the files may be a stale session's
        self.heartbeat = heartbeat
        self._idle = asyncio.Event()
        self._idle.set()
        self._clients: set[asyncio.Queue[bytes | None]] = set()
        self._closed = False

    @property
    def building(self) -> bool:
        return not self._idle.is_set()

    def build_started(self) -> None:
        self._idle.clear()

    def build_finished(self, error: str | None = None, changed: bool = True) -> None:
        """Record a build's outcome; tell the tabs to reload, or show them the error."""
        failed_before = self.error is not None
        self.error = error
        if error is not None:
            self._broadcast(_sse("error", error))
        elif changed or failed_before:
            self.build_id += 1
            self._broadcast(_sse("reload", str(self.build_id)))
        self.built = True
        self._idle.set()

    async def wait_idle(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    def close(self) -> None:
        """End every event stream, so the server can shut down."""
        self._closed = True
        self._broadcast(None)

    def _broadcast(self, message: bytes | None) -> None:
        for queue in self._clients:
            queue.put_nowait(message)

    def tag(self) -> bytes:
        """The <script> tag added before </body> of every HTML response."""
        return f'<script src="{SCRIPT_PATH}" data-build="{self.build_id}"></script>\n'.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == SCRIPT_PATH:
            type_ = ("Content-Type", "text/javascript; charset=utf-8")
            response = Response(200, (type_, ("Cache-Control", "no-cache")), LIVE_SCRIPT.encode())
            await response.send(send, head=scope["method"] == "HEAD")
        elif scope["path"] == EVENTS_PATH and scope["method"] == "GET":
            await self._stream(receive, send)
        else:
            await text_response(404, "not found\n").send(send)

    async def _stream(self, receive: Receive, send: Send) -> None:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._clients.add(queue)
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
        ]
        first = b"retry: 1000\n\n" + _sse("hello", str(self.build_id))
        if self.error is not None:
            first += _sse("error", self.error)
        disconnected = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": first, "more_body": True})
            while not self._closed:
                message = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {message, disconnected},
                    timeout=self.heartbeat,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if message not in done:
                    message.cancel()
                if disconnected in done:
                    return
                chunk = message.result() if message in done else b": ping\n\n"
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            self._clients.discard(queue)
            disconnected.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# --- static files --------------------------------------------------------------------------


def inject(page: bytes, tag: bytes) -> bytes:
    """Put `tag` before the last </body>, or at the end when there is none."""
    at = page.lower().rfind(b"</body>")
    return page + tag if at < 0 else page[:at] + tag + page[at:]


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


@dataclass(frozen=True)
class _Found:
    url_path: str  # the path the rules see: '/posts/hello/'
    file: Path
    body: bytes


class DevServer:
    """Serve `root` (a built site) under `base_path`; `routes` (path prefix -> ASGI app) are
    tried first, so dynamic endpoints such as the inbox can sit in front of the files."""

    def __init__(
        self,
        root: Path,
        live: LiveReload,
        header_rules: Sequence[HeaderRule] = (),
        redirect_rules: Sequence[RedirectRule] = (),
        routes: Mapping[str, ASGIApp] | None = None,
        base_path: str = "",
        live_reload: bool = True,
        build_wait: float = 60.0,
        allowed_hosts: AllowedHosts | None = None,
    ) -> None:
        self.root = root
        self.allowed_hosts = allowed_hosts  # None: any Host (an app inside a test)
        self.live = live
        self.live_reload = live_reload
        self.header_rules = tuple(header_rules)
        self.redirect_rules = tuple(redirect_rules)
        self.base_path = base_path.rstrip("/")
        self.build_wait = build_wait
        mounted: dict[str, ASGIApp] = {**(routes or {}), LIVE_PREFIX: live}
        # Longest prefix first: '/ap/inbox' wins over '/ap/'.
        self.routes = sorted(mounted.items(), key=lambda item: -len(item[0]))

    def set_rules(
        self, header_rules: Sequence[HeaderRule], redirect_rules: Sequence[RedirectRule]
    ) -> None:
        """Take the rules of a new build (fedipress.yaml may have changed)."""
        self.header_rules = tuple(header_rules)
        self.redirect_rules = tuple(redirect_rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        if self.allowed_hosts is not None:
            host = _header(scope, b"host")
            if not self.allowed_hosts.allows(host):
                status, text = (421, "unknown host\n") if host else (400, "no Host header\n")
                await text_response(status, text).send(send, head=scope["method"] == "HEAD")
                return
        path: str = scope["path"]
        for prefix, app in self.routes:
            if path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/"):
                await app(scope, receive, send)
                return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            response = text_response(405, "method not allowed\n", ("Allow", "GET, HEAD"))
        else:
            response = await self.respond(path, _query(scope), _header(scope, b"if-none-match"))
        await response.send(send, head=method == "HEAD")

    async def respond(self, path: str, query: str, if_none_match: str = "") -> Response:
        """The response to a GET for `path`."""
        if self.base_path and path == self.base_path:
            return self._redirect(path + "/", query)
        if self.base_path and not path.startswith(self.base_path + "/"):
            return self._not_found(path)
        site_path = path[len(self.base_path) :]
        if not _safe(site_path):
            return text_response(404, "not found\n")
        if not self.live.built:
            await self.live.wait_idle(self.build_wait)
        found = self._find(site_path)
        if found is None and self.live.building:
            # The build swaps the output folder with two renames; between them every file
            # is missing. Wait for the build rather than answer a spurious 404.
            await self.live.wait_idle(self.build_wait)
            found = self._find(site_path)
        redirect = match_redirect(site_path, self.redirect_rules, file_exists=found is not None)
        if redirect is not None:
            rule, target = redirect
            # A 200 to another host is a proxy (the inbox on a function host): in preview,
            # the app mounted in `routes` answers that path instead.
            if rule.status == 200 and target.startswith("/"):
                found = self._find(target.split("?")[0])
            elif rule.status in (404, 410) and target.startswith("/") and found is None:
                # A custom status with a local body, as Netlify serves it (Tombstones: 410).
                gone = self._find(target.split("?")[0])
                if gone is not None:
                    return self._with_etag(
                        rule.status, self._headers(site_path, gone.file), gone.body, ""
                    )
            elif rule.status in (301, 302, 303, 307, 308):
                return self._redirect(
                    self.base_path + target if target.startswith("/") else target,
                    query,
                    rule.status,
                )
        if found is None:
            if not site_path.endswith("/") and self._file(site_path + "/index.html"):
                # Netlify's pretty URLs: '/about' -> '/about/'. Temporary here, so browsers do
                # not remember it for the next site served on this port.
                return self._redirect(path + "/", query)
            return self._not_found(site_path)
        if found.file.suffix == ".html":
            return self._html(found, 200, if_none_match)
        return self._file_response(found, 200, if_none_match)

    # --- pieces ---------------------------------------------------------------------------

    def _file(self, site_path: str) -> Path | None:
        relative = site_path.lstrip("/")
        if relative in HOST_FILES:
            return None
        candidate = self.root / relative
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(self.root.resolve()) or not resolved.is_file():
            return None
        return resolved

    def _find(self, site_path: str) -> _Found | None:
        name = site_path + "index.html" if site_path.endswith("/") else site_path
        file = self._file(name)
        if file is None:
            return None
        try:
            return _Found(site_path, file, file.read_bytes())
        except OSError:  # swapped away between the checks and the read
            return None

    def _headers(self, url_path: str, file: Path) -> list[tuple[str, str]]:
        headers = host_headers(url_path, file.name, self.header_rules)
        headers = [(k, v) for k, v in headers if k.lower() != "cache-control"]
        return [*headers, ("Cache-Control", DEV_CACHE_CONTROL)]

    def _file_response(self, found: _Found, status: int, if_none_match: str) -> Response:
        return self._with_etag(
            status, self._headers(found.url_path, found.file), found.body, if_none_match
        )

    def _html(self, found: _Found, status: int, if_none_match: str) -> Response:
        if self.live.error is not None:
            return self._error_page()
        body = inject(found.body, self._tag())
        return self._with_etag(
            status, self._headers(found.url_path, found.file), body, if_none_match
        )

    def _with_etag(
        self, status: int, headers: list[tuple[str, str]], body: bytes, if_none_match: str
    ) -> Response:
        etag = _etag(body)
        headers = [*headers, ("ETag", etag)]
        if status == 200 and if_none_match and _etag_matches(if_none_match, etag):
            return Response(304, tuple(headers))
        return Response(status, tuple(headers), body)

    def _tag(self) -> bytes:
        return self.live.tag() if self.live_reload else b""

    def _error_page(self) -> Response:
        assert self.live.error is not None
        page = ERROR_PAGE.replace("{error}", html.escape(self.live.error))
        body = inject(page.encode(), self._tag())
        headers = (("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"))
        return Response(500, headers, body)

    def _not_found(self, site_path: str) -> Response:
        if self.live.error is not None:
            # A broken first build leaves nothing to serve: every page shows the error, with
            # the script that reloads the tab once the build is fixed.
            return self._error_page()
        page = self._find("/404.html")
        if page is None:
            return text_response(404, "not found\n")
        return self._html(_Found(site_path, page.file, page.body), 404, "")

    def _redirect(self, location: str, query: str, status: int = 302) -> Response:
        target = quote(location, safe="/:?#[]@!$&'()*+,;=%~")
        if query:
            target += ("&" if "?" in target else "?") + query
        return Response(status, (("Location", target),))


def _safe(site_path: str) -> bool:
    """Refuse '..', '.', backslashes and NUL: the path must name a file under the root."""
    if not site_path.startswith("/") or "\x00" in site_path or "\\" in site_path:
        return False
    return all(part not in (".", "..") for part in site_path.split("/"))


def _query(scope: Scope) -> str:
    return bytes(scope.get("query_string", b"")).decode("latin-1")


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""
