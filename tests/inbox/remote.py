"""A fake remote fediverse server for the inbox tests: uvicorn on 127.0.0.1:0 in a thread.

It serves actor documents (alice, bob, a GoToSocial-style `gts`, a deleted `ghost` answering
410, Move targets), signs the POSTs its actors send to our inbox, answers every other POST
with 202 (or with scripted replies), and records every request it receives.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fedipress.federation.keys import RSAPrivateKey, generate_private_key, public_pem
from fedipress.federation.signatures import (
    format_http_date,
    sign_request,
    sign_request_rfc9421,
)

AS = "https://www.w3.org/ns/activitystreams"
AP_JSON = "application/activity+json"
INBOX_URL = "https://blog.example/ap/inbox"  # what senders address: the public inbox


@functools.cache
def load_key(name: str) -> RSAPrivateKey:
    """The test key of a remote account: made once per test run, never stored."""
    return generate_private_key()


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # path and query, as sent
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 202
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0  # seconds to wait before answering


@dataclass
class RemoteServer:
    """The remote server's state; an ASGI app. Its own loop runs in another thread."""

    keys: Mapping[str, RSAPrivateKey]
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)  # GET path -> Location
    active: int = 0  # requests being answered right now
    max_active: int = 0
    actor_changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> fields
    files: dict[str, Reply] = field(default_factory=dict)  # GET path -> answer (avatars)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # GET path -> document
    # name -> the WebFinger `subject` its JRD gives (default: acct:name@127.0.0.1:port)
    subjects: dict[str, str] = field(default_factory=dict)

    # --- addresses and documents ------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    def actor_id(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def inbox(self, name: str) -> str:
        return f"{self.actor_id(name)}/inbox"

    def key_id(self, name: str) -> str:
        # GoToSocial's key ids are `…/main-key` URLs serving a stub (FEDERATION.md §4.4).
        return self.actor_id(name) + ("/main-key" if name == "gts" else "#main-key")

    def actor(self, name: str, /, **changes: Any) -> dict[str, Any]:
        actor_id = self.actor_id(name)
        document: dict[str, Any] = {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": actor_id,
            "type": "Person",
            "preferredUsername": name,
            "inbox": self.inbox(name),
            "outbox": f"{actor_id}/outbox",
            "endpoints": {"sharedInbox": self.shared_inbox},
            "publicKey": {
                "id": self.key_id(name),
                "owner": actor_id,
                "publicKeyPem": public_pem(self.keys[name]),
            },
        }
        if name == "alice2":
            document["alsoKnownAs"] = [self.actor_id("alice")]
        document.update(changes)
        return document

    def _document(self, path: str) -> tuple[int, dict[str, Any] | None]:
        if path in self.documents:
            return 200, self.documents[path]
        if path == "/users/ghost":
            return 410, None  # a deleted account
        if path == "/users/gts/main-key":
            # GoToSocial's stub: the actor's id, just the key, its owner the real actor.
            stub = self.actor("gts")
            return 200, {k: stub[k] for k in ("@context", "id", "type", "publicKey")}
        name = path.removeprefix("/users/")
        if path.startswith("/users/") and "/" not in name and name in self.keys:
            if name not in ("ghost", "nobody"):  # nobody: a 404 account
                return 200, self.actor(name, **self.actor_changes.get(name, {}))
        return 404, None

    # --- test controls ------------------------------------------------------------------------

    def reset(self) -> None:
        self.requests.clear()
        self.scripts.clear()
        self.actor_changes.clear()
        self.documents.clear()
        self.subjects.clear()
        self.redirects.clear()
        self.files.clear()
        self.active = self.max_active = 0

    def script(self, path: str, *replies: Reply) -> str:
        """Answer POSTs to `path` with these replies in turn, the last one from then on."""
        self.scripts[path] = list(replies)
        return self.base + path

    def posts(self, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and path in (None, r.path)]

    async def wait_for_posts(self, count: int, path: str | None = None, timeout: float = 3.0):
        deadline = time.monotonic() + timeout
        while len(self.posts(path)) < count:
            assert time.monotonic() < deadline, f"{len(self.posts(path))} POSTs, not {count}"
            await asyncio.sleep(0.01)
        return self.posts(path)

    # --- the remote actors' side of a delivery to our inbox ----------------------------------

    def sign(
        self,
        name: str,
        body: bytes,
        *,
        scheme: str = "cavage",
        key_of: str | None = None,
        now: datetime | None = None,
        content_type: str = AP_JSON,
    ) -> dict[str, str]:
        """Headers for POSTing `body` to our inbox as actor `name` (key of `key_of`)."""
        signer = key_of or name
        key, key_id = self.keys[signer], self.key_id(signer)
        when = now or datetime.now(UTC)
        headers = {"Content-Type": content_type}
        if scheme == "rfc9421":
            return sign_request_rfc9421("POST", INBOX_URL, headers, body, key_id, key, when)
        if scheme == "gts":
            return sign_gotosocial(INBOX_URL, headers, body, key_id, key, when)
        return sign_request("POST", INBOX_URL, headers, body, key_id, key, when)

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["raw_path"].decode()
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode()
        headers = tuple((k.decode(), v.decode()) for k, v in scope["headers"])
        self.requests.append(Recorded(scope["method"], path, headers, body))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            reply = self._reply(scope["method"], path)
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            self.active -= 1
        raw = [(k.encode(), v.encode()) for k, v in reply.headers]
        raw.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        await send({"type": "http.response.body", "body": reply.body})

    def _reply(self, method: str, path: str) -> Reply:
        if method == "POST":
            script = self.scripts.get(path)
            if script:
                return script.pop(0) if len(script) > 1 else script[0]
            return Reply(202)
        if path in self.redirects:
            return Reply(302, (("location", self.redirects[path]),))
        if path in self.files:
            return self.files[path]
        if path.startswith("/.well-known/webfinger?"):
            return self._webfinger(path)
        status, document = self._document(path)
        if document is None:
            return Reply(status, body=b'{"error":"gone"}' if status == 410 else b"not found")
        return Reply(200, (("content-type", AP_JSON),), json.dumps(document).encode())

    def _webfinger(self, path: str) -> Reply:
        """The JRD of one of our accounts, as Mastodon serves it: `subject` and a `self` link."""
        resource = parse_qs(urlsplit(path).query).get("resource", [""])[0]
        name = resource.removeprefix("acct:").split("@", 1)[0]
        if name not in self.keys or name in ("ghost", "nobody"):
            return Reply(404, body=b"not found")
        jrd = {
            "subject": self.subjects.get(name, f"acct:{name}@127.0.0.1:{self.port}"),
            "links": [{"rel": "self", "type": AP_JSON, "href": self.actor_id(name)}],
        }
        return Reply(200, (("content-type", "application/jrd+json"),), json.dumps(jrd).encode())


def sign_gotosocial(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key_id: str,
    key: RSAPrivateKey,
    now: datetime,
) -> dict[str, str]:
    """What GoToSocial sends: `hs2019`, no content-type in the signed set (its
    http_signatures.md). Written out here so our verifier is checked against an
    independent signer, not only against our own sign_request."""
    path = url.split("://", 1)[1]
    host, _, target = path.partition("/")
    out = dict(headers)
    out["Host"] = host
    out["Date"] = format_http_date(now)
    out["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    lines = [
        f"(request-target): post /{target}",
        f"host: {host}",
        f"date: {out['Date']}",
        f"digest: {out['Digest']}",
    ]
    signature = key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    out["Signature"] = (
        f'keyId="{key_id}",algorithm="hs2019",headers="(request-target) host date digest",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return out


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve_in_thread(app: Any, lifespan: str = "off", **options: Any) -> Iterator[uvicorn.Server]:
    """uvicorn on a socket bound to 127.0.0.1:0, in a thread (httpx's serve_in_thread).
    The server's `.port` is set before it yields."""
    sock = _bound_socket()
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_level="error",
        access_log=False,
        http="h11",
        ws="none",
        **options,
    )
    server = uvicorn.Server(config)
    server.port = sock.getsockname()[1]  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not server.started:
            assert thread.is_alive(), "the loopback test server failed to start"
            assert time.monotonic() < deadline, "the loopback test server did not start"
            time.sleep(0.005)
        yield server
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


@contextmanager
def silent_server() -> Iterator[str]:
    """A server that accepts TCP connections and never answers; yields its base URL."""
    sock = _bound_socket()
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        sock.close()


@dataclass
class StreamedAnswers:
    """What a streaming_server did: its base URL, and the body bytes it wrote per request
    (until the body ended or the client hung up)."""

    base: str
    written: list[int] = field(default_factory=list)


def _read_request(conn: socket.socket) -> bool:
    """Read one HTTP/1.1 request with a Content-Length body; False at end of stream."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


@contextmanager
def streaming_server(
    status: int,
    size: int | None,
    *,
    declared: int | None = None,
    chunk: bytes = b"overflow " * 7282,
    delay: float = 0.0,
) -> Iterator[StreamedAnswers]:
    """A server answering every request with `status` and a body of `size` bytes (None:
    endless), made chunk by chunk as it is sent, never held whole, `delay` seconds apart.
    `declared` is the Content-Length it claims (default: `size`; none when endless)."""
    sock = _bound_socket()
    sock.listen(16)
    answers = StreamedAnswers(f"http://127.0.0.1:{sock.getsockname()[1]}")
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            if not _read_request(conn):
                return
            length = declared if declared is not None else size
            framing = f"content-length: {length}" if length is not None else "connection: close"
            conn.sendall(f"HTTP/1.1 {status} Whatever\r\n{framing}\r\n\r\n".encode())
            written = 0
            try:
                while not stop.is_set() and (size is None or written < size):
                    part = chunk if size is None else chunk[: size - written]
                    conn.sendall(part)
                    written += len(part)
                    if delay:
                        time.sleep(delay)
            except OSError:
                pass  # the client hung up
            answers.written.append(written)

    def accept() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                conn = sock.accept()[0]
            except OSError:
                continue
            conn.settimeout(None)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        stop.set()
        thread.join(5)
        sock.close()
