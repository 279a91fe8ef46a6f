"""Run the Fedify test peer (tests/peers/fedify/peer.mjs) in a subprocess and drive it through
its JSON control API. Loopback only; the peer refuses to contact any other address."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

PEER_DIR = Path(__file__).parent / "fedify"
START_TIMEOUT = 15.0
ACTIVITY_JSON = "application/activity+json"

Record = dict[str, Any]


class PeerNotInstalled(RuntimeError):
    """node or the peer's node_modules is missing."""


def check_installed() -> str:
    """The node executable; raises PeerNotInstalled with the command that fixes it."""
    node = shutil.which("node")
    if node is None:
        raise PeerNotInstalled(
            "node is not on PATH: the Fedify test peer needs Node.js 20 or later"
        )
    if not (PEER_DIR / "node_modules" / "@fedify" / "fedify").is_dir():
        raise PeerNotInstalled(
            f"{PEER_DIR / 'node_modules'} is missing: run scripts/test, which runs npm ci "
            f"there (or: cd {PEER_DIR} && npm ci)"
        )
    return node


class FedifyPeer:
    """`node peer.mjs --port 0` with a Fedify Person at `actor_url`; use `start()` / `stop()`."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.client: httpx.Client | None = None
        self._lines: dict[str, list[str]] = {"out": [], "err": []}
        self._changed = threading.Condition()
        self._readers: list[threading.Thread] = []

    @property
    def actor_url(self) -> str:
        return f"{self.url}/users/alice"

    @property
    def inbox_url(self) -> str:
        return f"{self.url}/users/alice/inbox"

    @property
    def shared_inbox_url(self) -> str:
        return f"{self.url}/inbox"

    @property
    def target_url(self) -> str:
        """bob: the peer's second account, a move target."""
        return f"{self.url}/users/bob"

    @property
    def target_handle(self) -> str:
        return f"bob@{self.url.removeprefix('http://')}"

    def start(self) -> FedifyPeer:
        node = check_installed()
        self.proc = subprocess.Popen(
            [node, "peer.mjs", "--port", "0", *self.args],
            cwd=PEER_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            reader = threading.Thread(target=self._read, args=(name, stream), daemon=True)
            reader.start()
            self._readers.append(reader)
        try:
            self.url = self._wait_for_url()
        except BaseException:
            self.stop()
            raise
        self.client = httpx.Client(base_url=self.url, timeout=15.0, trust_env=False)
        return self

    def _read(self, name: str, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self._lines[name].append(line.rstrip("\n"))
                self._changed.notify_all()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        pattern = re.compile(r"^peer listening on (http://127\.0\.0\.1:\d+)$")
        with self._changed:
            while True:
                for line in self._lines["out"]:
                    if match := pattern.match(line):
                        return match.group(1)
                ended = self.proc is None or self.proc.poll() is not None
                if ended or time.monotonic() > deadline:
                    raise AssertionError(f"the Fedify peer did not start:\n{self.output()}")
                self._changed.wait(0.1)

    def output(self) -> str:
        """What the peer printed (Fedify's warnings and errors go to stderr)."""
        with self._changed:
            return "\n".join(
                [*self._lines["out"], *(f"[stderr] {line}" for line in self._lines["err"])]
            )

    # --- control API ---------------------------------------------------------------------

    def _call(self, method: str, path: str, body: object = None) -> Any:
        assert self.client is not None, "start() the peer first"
        response = self.client.request(method, path, json=body)
        if response.status_code != 200:
            raise AssertionError(
                f"peer {method} {path} answered {response.status_code}: {response.text}\n"
                f"peer output:\n{self.output()}"
            )
        return response.json()

    def follow(self, actor_url: str) -> Record:
        """alice sends a Follow to that actor's inbox; returns delivered, error, activity."""
        return self._call("POST", "/control/follow", {"actor": actor_url})

    def unfollow(self, actor_url: str) -> Record:
        """alice sends Undo of her last Follow of that actor; returns as follow() does."""
        return self._call("POST", "/control/unfollow", {"actor": actor_url})

    def reply(self, actor_url: str, in_reply_to: str, content: str) -> Record:
        """alice sends a Create of a public Note replying to `in_reply_to` to the actor's
        inbox; the answer's activity.object.id is the note's id."""
        body = {"actor": actor_url, "inReplyTo": in_reply_to, "content": content}
        return self._call("POST", "/control/reply", body)

    def like(self, actor_url: str, object_id: str) -> Record:
        return self._call("POST", "/control/like", {"actor": actor_url, "object": object_id})

    def announce(self, actor_url: str, object_id: str) -> Record:
        return self._call("POST", "/control/announce", {"actor": actor_url, "object": object_id})

    def undo(self, actor_url: str, activity_id: str) -> Record:
        """Undo of one of alice's likes or boosts, by its id."""
        return self._call("POST", "/control/undo", {"actor": actor_url, "id": activity_id})

    def update_note(self, actor_url: str, note_id: str, content: str) -> Record:
        body = {"actor": actor_url, "id": note_id, "content": content}
        return self._call("POST", "/control/update", body)

    def delete_note(self, actor_url: str, note_id: str) -> Record:
        return self._call("POST", "/control/delete", {"actor": actor_url, "id": note_id})

    def set_aliases(self, *aliases: str) -> Record:
        """bob's alsoKnownAs: the accounts that may move to him."""
        return self._call("POST", "/control/aliases", {"aliases": list(aliases)})

    def received(self) -> list[Record]:
        """Every request to alice's inboxes: inbox, status, verified, type, id, actor,
        object (an id), scheme, headers (the signature's), body (the JSON sent), response
        (Fedify's refusal text), and for a Move what alice's server made of it (`move`)."""
        return self._call("GET", "/control/received")

    def log(self) -> list[Record]:
        """Every HTTP request the peer sent: method, url, scheme, status, error, response."""
        return self._call("GET", "/control/log")

    def wait_for_received(
        self, predicate: Callable[[Record], bool], timeout: float = 10.0
    ) -> Record:
        """The first answered record (Fedify has set its status) matching `predicate`,
        polling until `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.received()
            for record in records:
                if record["status"] is not None and predicate(record):
                    return record
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"nothing matching arrived at the peer within {timeout} s; received:\n"
                    f"{records}\nsent:\n{self.log()}\npeer output:\n{self.output()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            for reader in self._readers:
                reader.join(5)
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> FedifyPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
