"""A TCP relay on 127.0.0.1 in front of the homeserver, which can hold back an answer.

Armed with `hold(marker)`, it passes the next request whose first line contains `marker` on
to the homeserver, so the homeserver acts on it, but keeps the answer from the client and
sets `held`: the moment a sender is killed "mid-send" is then exactly the worst one, after
the message was posted and before the sender could record it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Relay:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(32)
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.held = threading.Event()
        self.requests: list[str] = []  # first lines of the requests relayed
        self._marker: str | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self, marker: str) -> None:
        with self._lock:
            self._marker = marker
            self.held.clear()

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, server]
            # Which request the server is answering: the last one seen on this connection
            # (clients send one request at a time on a connection).
            state = {"holding": False}
            threading.Thread(
                target=self._upstream, args=(client, server, state), daemon=True
            ).start()
            threading.Thread(
                target=self._downstream, args=(server, client, state), daemon=True
            ).start()

    def _upstream(
        self, client: socket.socket, server: socket.socket, state: dict[str, bool]
    ) -> None:
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                _shut(server)
                return
            first = data.split(b"\r\n", 1)[0].decode("latin-1")
            if first.split(" ", 1)[0] in ("GET", "PUT", "POST", "DELETE"):
                with self._lock:
                    self.requests.append(first)
                    if self._marker is not None and self._marker in first:
                        state["holding"] = True
                        self._marker = None
            try:
                server.sendall(data)
            except OSError:
                return

    def _downstream(
        self, server: socket.socket, client: socket.socket, state: dict[str, bool]
    ) -> None:
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                data = b""
            if not data:
                _shut(client)
                return
            if state["holding"]:
                self.held.set()  # the homeserver answered; the client never hears it
                continue
            try:
                client.sendall(data)
            except OSError:
                return


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@contextmanager
def relay_to(port: int) -> Iterator[Relay]:
    relay = Relay(port)
    try:
        yield relay
    finally:
        relay.close()
