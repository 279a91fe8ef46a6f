"""fediverse-pasture's verify_actor app as an independent peer, on 127.0.0.1 only.

`Pasture(workdir).start()` runs this file as a child process. The child builds pasture's own
Quart app (`fediverse_pasture.verify_actor.build_app`) and serves it with uvicorn on a socket
bound to 127.0.0.1:0; pasture's CLI is never used, because it listens on 0.0.0.0.
The child logs every request pasture receives and every request pasture sends, each with the
status it got, as JSON lines in `workdir`.

Why a child process and not a thread:
- importing bovine writes `bovine_jsonld_cache.sqlite` into the working directory, and
  `build_app` writes `data.toml` there and sets root logging to DEBUG;
- bovine raises DeprecationWarnings, which our `filterwarnings = error` would turn into
  failures inside pasture;
- bovine loads JSON-LD contexts (w3id.org, …) over the network. The child serves the few it
  needs from memory, and it refuses every HTTP request to a host that is not loopback.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TIMEOUT = 15.0
RECEIVED = "received.jsonl"  # requests pasture's server answered
SENT = "sent.jsonl"  # requests pasture's verifier and key fetcher sent
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and the status it got (-1: no response, e.g. connection refused)."""

    method: str
    url: str
    headers: dict[str, str]  # names in lower case
    status: int
    body: str  # the response body (only recorded for requests pasture sent)

    @property
    def signature(self) -> dict[str, str]:
        """The draft-cavage `Signature` parameters (lower-case names), or {} if unsigned."""
        raw = self.headers.get("signature", "")
        return {k.lower(): v for k, v in re.findall(r'([A-Za-z]+)="([^"]*)"', raw)}

    @property
    def variant(self) -> str:
        """How the request is signed, e.g. `cavage rsa-sha256 (request-target) host date`."""
        if "signature-input" in self.headers:
            return "rfc9421 " + self.headers["signature-input"]
        params = self.signature
        if not params:
            return "unsigned"
        digest = self.headers.get("digest", "").split("=", 1)[0]
        suffix = f", Digest {digest}=" if digest else ""
        return f"cavage {params.get('algorithm', '?')} [{params.get('headers', '')}]{suffix}"


@dataclass(frozen=True)
class Verification:
    """pasture's answer for one actor URI: its result table, its step log, and the traffic."""

    # {"alice": {"get_actor": bool, "post_inbox": bool}, …, "webfinger": bool}
    result: dict[str, Any]
    steps: list[Any]
    sent: list[Exchange]
    received: list[Exchange]

    def posts_to(self, inbox: str, actor: str) -> list[Exchange]:
        """The POSTs pasture sent to `inbox` while it verified with its actor `actor`."""
        return [e for e in self.sent_during(actor) if e.method == "POST" and e.url == inbox]

    def sent_during(self, actor: str) -> list[Exchange]:
        """What pasture sent while it verified with `actor` (one at a time, in order),
        including its own key fetches for requests it received meanwhile."""
        marks = [i for i, e in enumerate(self.sent) if e.method == "MARK"]
        start = next(i for i in marks if self.sent[i].url == actor)
        end = min([i for i in marks if i > start], default=len(self.sent))
        return self.sent[start + 1 : end]


class Pasture:
    """The pasture verify_actor app in a child process, bound to 127.0.0.1 on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._log = None

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1].rstrip("/")

    def start(self) -> Pasture:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = (self.workdir / "pasture.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(self.proc.stdout.readline()), daemon=True
        )
        reader.start()
        reader.join(TIMEOUT)
        match = re.match(r"^pasture (http://127\.0\.0\.1:\d+/)$", (line or [""])[0].strip())
        if not match:
            self.stop()
            raise AssertionError(f"pasture did not start; its log:\n{self.log()[-3000:]}")
        self.url = match.group(1)
        return self

    def verify(self, actor_uri: str) -> Verification:
        """Run pasture's verify_actor against `actor_uri` (an http URL or an acct: URI)."""
        before_sent, before_received = len(self._read(SENT)), len(self._read(RECEIVED))
        # The JSON form of pasture's own page: GET /?actor_uri=… with Accept: application/json.
        response = httpx.get(
            self.url,
            params={"actor_uri": actor_uri},
            headers={"accept": "application/json"},
            timeout=TIMEOUT * 2,
        )
        response.raise_for_status()
        data = response.json()
        return Verification(
            result=data["result"],
            steps=json.loads(data["messages"])["steps"],
            sent=self._read(SENT)[before_sent:],
            received=[
                e
                for e in self._read(RECEIVED)[before_received:]
                if not e.url.startswith(self.url + "?")  # our own call above
            ],
        )

    def log(self) -> str:
        path = self.workdir / "pasture.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()

    def _read(self, name: str) -> list[Exchange]:
        path = self.workdir / name
        if not path.exists():
            return []
        return [Exchange(**json.loads(line)) for line in path.read_text().splitlines() if line]


# --- the child process --------------------------------------------------------------------

# Just enough of each context for pasture's key lookup (`with_external_context` compacts the
# actor against these), so that nothing is fetched from w3id.org or purl.archive.org.
_CONTEXTS: dict[str, object] = {
    "https://w3id.org/security/v1": {
        "id": "@id",
        "type": "@type",
        "sec": "https://w3id.org/security#",
        "owner": {"@id": "sec:owner", "@type": "@id"},
        "publicKey": {"@id": "sec:publicKey", "@type": "@id"},
        "publicKeyPem": "sec:publicKeyPem",
    },
    "https://www.w3.org/ns/did/v1": {"id": "@id", "type": "@type"},
    "https://w3id.org/security/multikey/v1": {
        "id": "@id",
        "type": "@type",
        "Multikey": "https://w3id.org/security#Multikey",
        "publicKeyMultibase": "https://w3id.org/security#publicKeyMultibase",
    },
    "https://purl.archive.org/socialweb/webfinger": {
        "webfinger": {
            "@id": "https://purl.archive.org/socialweb/webfinger#webfinger",
            "@type": "http://www.w3.org/2001/XMLSchema#string",
        }
    },
}


def _append(name: str, record: dict[str, Any]) -> None:
    with open(name, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def _confine_to_loopback() -> None:
    """Serve JSON-LD contexts from memory; refuse any aiohttp request to a non-loopback host;
    log each request pasture sends, and what came back."""
    import aiohttp
    import bovine.jsonld
    import yarl

    def document_loader(url: str, options: object = None, **kwargs: object) -> dict[str, Any]:
        if url in _CONTEXTS:
            return {
                "contentType": "application/ld+json",
                "contextUrl": None,
                "documentUrl": url,
                "document": {"@context": _CONTEXTS[url]},
            }
        raise RuntimeError(f"pasture harness: no network for JSON-LD context {url}")

    # bovine's loader calls this factory for every context it has not cached.
    bovine.jsonld.requests_document_loader = lambda **kwargs: document_loader

    original = aiohttp.ClientSession._request

    async def _request(self: Any, method: str, url: Any, **kwargs: Any) -> Any:
        target = yarl.URL(str(url))
        if target.host not in LOOPBACK:
            raise aiohttp.ClientConnectionError(f"pasture harness: {target.host} is not loopback")
        headers = {str(k).lower(): str(v) for k, v in (kwargs.get("headers") or {}).items()}
        if kwargs.get("params"):
            target = target.update_query(kwargs["params"])
        record = {
            "method": method,
            "url": str(target),
            "headers": headers,
            "status": -1,
            "body": "",
        }
        try:
            response = await original(self, method, url, **kwargs)
        except BaseException:
            _append(SENT, record)
            raise
        body = await response.read()  # aiohttp keeps it: pasture's own read still works
        record.update(status=response.status, body=body.decode("utf-8", "replace")[:2000])
        _append(SENT, record)
        return response

    aiohttp.ClientSession._request = _request


def _mark_verification_steps() -> None:
    """Put a MARK record in the sent log as pasture starts each actor, to group its requests."""
    from fediverse_pasture.server.verify_actor import ActorVerifier

    original = ActorVerifier.verify_for_actor

    async def verify_for_actor(self: Any, session: Any, actor: Any) -> Any:
        _append(
            SENT,
            {"method": "MARK", "url": actor.actor_name, "headers": {}, "status": 0, "body": ""},
        )
        return await original(self, session, actor)

    ActorVerifier.verify_for_actor = verify_for_actor


def main() -> None:
    import socket

    import uvicorn
    from quart import request

    _confine_to_loopback()
    _mark_verification_steps()
    from fediverse_pasture.verify_actor import build_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # pasture names its actors {scheme}://{domain}/{name}; https=False keeps them on http.
    app = build_app(False, f"127.0.0.1:{port}", False, 5)

    @app.after_request
    async def record(response: Any) -> Any:
        _append(
            RECEIVED,
            {
                "method": request.method,
                "url": request.url,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "status": response.status_code,
                "body": "",
            },
        )
        return response

    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    print(f"pasture http://127.0.0.1:{port}/", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it handled; that is our stop()
        pass


if __name__ == "__main__":
    main()
