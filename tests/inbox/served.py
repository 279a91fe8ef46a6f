"""The inbox under test as a real server: InboxASGI run by uvicorn on 127.0.0.1:0 in a thread
(with its lifespan, so the sender starts and the service closes on the server's own loop),
and raw HTTP/1.1 requests to it, whose every header and byte the test chooses."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fedipress.adapters.asgi import InboxASGI
from fedipress.config import Config
from fedipress.federation.keys import RSAPrivateKey, SigningKey
from fedipress.inbox.service import InboxService
from tests.inbox.harness import ACTOR, Clock, Database
from tests.inbox.remote import RemoteServer, serve_in_thread


@dataclass(frozen=True)
class Served:
    """A running inbox: its base URL, service and database."""

    base: str
    port: int
    service: InboxService
    db: Database
    remote: RemoteServer
    clock: Clock

    def __repr__(self) -> str:  # short, for Hypothesis's report of a failing case
        return f"Served({self.base}, {self.db.name})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis's printer
        printer.text(repr(self))


@contextmanager
def serve_inbox(
    db: Database, remote: RemoteServer, blog_key: RSAPrivateKey, config: Config
) -> Iterator[Served]:
    clock = Clock()
    service = InboxService.for_site(
        config, db.store, SigningKey(f"{ACTOR}#main-key", blog_key), allow_private=True, now=clock
    )
    with serve_in_thread(InboxASGI(service), lifespan="on") as server:
        port = server.port  # type: ignore[attr-defined]
        yield Served(f"http://127.0.0.1:{port}", port, service, db, remote, clock)


@dataclass(frozen=True)
class RawResponse:
    status: int  # 0: the connection was reset before any answer
    body: bytes

    def reason(self) -> str:
        """The `error` of a JSON error body, or the body's start."""
        try:
            return str(json.loads(self.body).get("error", ""))
        except (ValueError, AttributeError):
            return self.body[:200].decode("latin-1")


def raw_request(
    port: int,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    timeout: float = 30.0,
) -> RawResponse:
    """Send exactly these headers (no Content-Length added) and this body; read the answer
    until the server closes the connection."""
    head = f"{method} {target} HTTP/1.1\r\n".encode()
    for name, value in headers:
        head += name.encode("latin-1", "replace") + b": " + value.encode("latin-1", "replace")
        head += b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n" + body)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            # The server refused a malformed head and closed with our body unread.
            if not chunks:
                return RawResponse(0, b"connection reset without an answer")
    answer = b"".join(chunks)
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return RawResponse(int(status_line.split()[1]), payload)


def signed_headers(remote: RemoteServer, body: bytes, **sign: Any) -> list[tuple[str, str]]:
    """The headers RemoteServer.sign makes, a correct Content-Length and Host added."""
    headers = list(remote.sign("alice", body, **sign).items())
    names = {name.lower() for name, _ in headers}
    if "host" not in names:
        headers.append(("Host", "blog.example"))
    headers.append(("Content-Length", str(len(body))))
    return headers
