"""The Fedify peer against fedipress's own signature and fetch code: our signatures verify in
Fedify, Fedify's verify in ours, and the peer records what it received and sent."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from fedipress.federation.fetch import Fetcher
from fedipress.federation.keyfetch import CachedKeyFetcher
from fedipress.federation.keys import SigningKey, generate_private_key, load_public_key, public_pem
from fedipress.federation.signatures import (
    VerifyResult,
    sign_request,
    sign_request_rfc9421,
    verify_request,
)
from tests.peers.fedify_peer import ACTIVITY_JSON, FedifyPeer

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SIGNERS = {"draft-cavage": sign_request, "rfc9421": sign_request_rfc9421}


def _now() -> datetime:
    return datetime.now(UTC)


class LocalActors:
    """A tiny AP server on 127.0.0.1: actors /actors/<name>, with keys made at start,
    each with an inbox that checks signatures with fedipress's verify_request.

    Like an inbox that verifies only draft-cavage, it answers 401 to RFC 9421 requests (after
    verifying them, so a test can see that they were valid) and 202 to verified cavage ones.
    """

    def __init__(self) -> None:
        self.keys = {name: generate_private_key() for name in ("alice", "bob")}
        self.inbox_requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def actor_url(self, name: str) -> str:
        return f"{self.url}/actors/{name}"

    def signer(self, name: str) -> SigningKey:
        return SigningKey(f"{self.actor_url(name)}#main-key", self.keys[name])

    def actor(self, name: str) -> dict[str, Any]:
        actor_id = self.actor_url(name)
        return {
            "@context": [AS_CONTEXT, "https://w3id.org/security/v1"],
            "id": actor_id,
            "type": "Person",
            "preferredUsername": name,
            "inbox": f"{actor_id}/inbox",
            "publicKey": {
                "id": f"{actor_id}#main-key",
                "owner": actor_id,
                "publicKeyPem": public_pem(self.keys[name]),
            },
        }

    async def _verify(self, path: str, headers: dict[str, str], body: bytes) -> VerifyResult:
        async with Fetcher(signer=None, site_url=self.url, allow_private=True) as fetcher:
            return await verify_request(
                "POST",
                path,
                headers,
                body,
                public_host=self.url.removeprefix("http://"),
                public_scheme="http",
                fetch_key=CachedKeyFetcher(fetcher),
                now=_now(),
            )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        actors = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: object = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", ACTIVITY_JSON)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                name = self.path.removeprefix("/actors/")
                if name in actors.keys:
                    self._answer(200, actors.actor(name))
                else:
                    self._answer(404, {"error": "no such actor"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers.items())
                result = asyncio.run(actors._verify(self.path, headers, body))
                scheme = "rfc9421" if "Signature-Input" in self.headers else "draft-cavage"
                actors.inbox_requests.append(
                    {
                        "path": self.path,
                        "scheme": scheme,
                        "verify": result,
                        "body": json.loads(body),
                    }
                )
                if scheme == "rfc9421" or not result.ok:
                    self._answer(401, {"error": result.reason or "RFC 9421 is not accepted here"})
                else:
                    self._answer(202)

        return Handler

    def __enter__(self) -> LocalActors:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def local_actors() -> Iterator[LocalActors]:
    with LocalActors() as actors:
        yield actors


def _follow(actor: str, target: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": f"{actor}#follows/{uuid.uuid4()}",
        "type": "Follow",
        "actor": actor,
        "object": target,
    }


def _post_signed(
    url: str, body: bytes, signer: SigningKey, scheme: str, sent: bytes | None = None
) -> httpx.Response:
    headers = SIGNERS[scheme](
        "POST",
        url,
        {"Content-Type": ACTIVITY_JSON},
        body,
        signer.key_id,
        signer.private_key,
        _now(),
    )
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.post(url, content=body if sent is None else sent, headers=headers)


def test_fedify_peer__serves_its_actor_as_activity_json(fedify_peer: FedifyPeer) -> None:
    # When
    response = httpx.get(fedify_peer.actor_url, headers={"Accept": ACTIVITY_JSON}, trust_env=False)
    # Then
    assert response.status_code == 200
    assert response.headers["content-type"] == ACTIVITY_JSON
    actor = response.json()
    assert actor["id"] == fedify_peer.actor_url
    assert actor["type"] == "Person"
    assert actor["inbox"] == fedify_peer.inbox_url
    assert actor["endpoints"]["sharedInbox"] == fedify_peer.shared_inbox_url
    key = actor["publicKey"]
    assert key["id"] == f"{fedify_peer.actor_url}#main-key"
    assert key["owner"] == fedify_peer.actor_url
    assert load_public_key(key["publicKeyPem"]).key_size >= 2048


def test_fedify_peer__our_fetcher_fetches_its_actor(
    fedify_peer: FedifyPeer, local_actors: LocalActors
) -> None:
    # Given
    signer = local_actors.signer("alice")

    async def fetch() -> Any:
        async with Fetcher(signer=signer, site_url=local_actors.url, allow_private=True) as fetcher:
            return await fetcher.fetch_json(fedify_peer.actor_url)

    # When
    result = asyncio.run(fetch())
    # Then
    assert result.ok, result.reason
    assert result.status == 200
    assert result.document["id"] == fedify_peer.actor_url
    assert result.document["publicKey"]["id"] == f"{fedify_peer.actor_url}#main-key"


def test_fedify_peer__authorized_fetch_verifies_our_signed_get(local_actors: LocalActors) -> None:
    # Given a peer that serves its actor only to signed GETs whose key it can verify
    # (Mastodon's secure mode); our signer's actor is served by local_actors.
    signer = local_actors.signer("alice")

    async def fetch(url: str, key: SigningKey | None) -> Any:
        async with Fetcher(signer=key, site_url=local_actors.url, allow_private=True) as fetcher:
            return await fetcher.fetch_json(url)

    with FedifyPeer("--authorized-fetch") as peer:
        # When
        signed = asyncio.run(fetch(peer.actor_url, signer))
        unsigned = asyncio.run(fetch(peer.actor_url, None))
        other_key = SigningKey(signer.key_id, local_actors.keys["bob"])
        forged = asyncio.run(fetch(peer.actor_url, other_key))
        # Then
        assert signed.ok, (signed.reason, peer.output())
        assert signed.document["id"] == peer.actor_url
        assert (unsigned.ok, unsigned.status) == (False, 401)
        assert (forged.ok, forged.status) == (False, 401)


@pytest.mark.parametrize(
    ("scheme", "inbox"),
    [("draft-cavage", "personal"), ("rfc9421", "shared"), ("rfc9421", "personal")],
)
def test_fedify_peer__verifies_our_signed_follow(
    fedify_peer: FedifyPeer, local_actors: LocalActors, scheme: str, inbox: str
) -> None:
    # Given
    bob = local_actors.actor_url("bob")
    follow = _follow(bob, fedify_peer.actor_url)
    url = fedify_peer.inbox_url if inbox == "personal" else fedify_peer.shared_inbox_url
    # When
    response = _post_signed(url, json.dumps(follow).encode(), local_actors.signer("bob"), scheme)
    # Then
    assert response.status_code == 202, (response.text, fedify_peer.output())
    [record] = [r for r in fedify_peer.received() if r["id"] == follow["id"]]
    assert record["verified"] is True
    assert record["inbox"] == inbox
    assert record["scheme"] == scheme
    assert (record["type"], record["id"], record["actor"], record["object"]) == (
        "Follow",
        follow["id"],
        bob,
        fedify_peer.actor_url,
    )


@pytest.mark.parametrize("scheme", ["draft-cavage", "rfc9421"])
def test_fedify_peer__rejects_a_tampered_body(
    fedify_peer: FedifyPeer, local_actors: LocalActors, scheme: str
) -> None:
    # Given a Follow signed by bob, whose body is changed after signing
    bob = local_actors.actor_url("bob")
    follow = _follow(bob, fedify_peer.actor_url)
    signed = json.dumps(follow).encode()
    tampered_id = f"{bob}#follows/{uuid.uuid4()}"
    tampered = signed.replace(follow["id"].encode(), tampered_id.encode())
    # When
    response = _post_signed(
        fedify_peer.inbox_url, signed, local_actors.signer("bob"), scheme, tampered
    )
    # Then
    assert response.status_code == 401
    [record] = [r for r in fedify_peer.received() if r["id"] == tampered_id]
    assert record["verified"] is False
    assert record["listener"] is False
    assert record["status"] == 401
    assert "verify" in record["response"]


def test_fedify_peer__double_knocks_an_inbox_that_refuses_rfc9421(
    fedify_peer: FedifyPeer, local_actors: LocalActors
) -> None:
    # Given an inbox that answers 401 to RFC 9421 and verifies draft-cavage
    bob = local_actors.actor_url("bob")
    # When
    result = fedify_peer.follow(bob)
    # Then Fedify knocked with RFC 9421 first, then retried with draft-cavage
    assert result["delivered"] is True, (result, fedify_peer.output())
    follow_id = result["activity"]["id"]
    posts = [e for e in fedify_peer.log() if e["method"] == "POST" and e["url"] == f"{bob}/inbox"]
    assert [(p["scheme"], p["status"]) for p in posts] == [("rfc9421", 401), ("draft-cavage", 202)]
    # and both knocks carried a signature that fedipress's verify_request accepts.
    knocks = local_actors.inbox_requests
    assert [k["scheme"] for k in knocks] == ["rfc9421", "draft-cavage"]
    for knock in knocks:
        assert knock["verify"].ok, knock["verify"].reason
        assert knock["verify"].owner == fedify_peer.actor_url
        assert knock["body"]["id"] == follow_id
        assert (knock["body"]["type"], knock["body"]["object"]) == ("Follow", bob)


def test_fedify_peer__unfollow_sends_undo_of_the_follow_with_the_remembered_scheme(
    fedify_peer: FedifyPeer, local_actors: LocalActors
) -> None:
    # Given alice follows bob (a double knock: RFC 9421 refused, draft-cavage accepted)
    bob = local_actors.actor_url("bob")
    follow_id = fedify_peer.follow(bob)["activity"]["id"]
    # When
    result = fedify_peer.unfollow(bob)
    # Then the Undo embeds the Follow, and goes out with draft-cavage straight away:
    # Fedify remembers, per origin, which scheme worked.
    assert result["delivered"] is True, (result, fedify_peer.output())
    undo = local_actors.inbox_requests[-1]
    assert undo["verify"].ok, undo["verify"].reason
    assert undo["body"]["type"] == "Undo"
    assert undo["body"]["object"]["id"] == follow_id
    posts = [(e["scheme"], e["status"]) for e in fedify_peer.log() if e["url"] == f"{bob}/inbox"]
    assert posts == [("rfc9421", 401), ("draft-cavage", 202), ("draft-cavage", 202)]
