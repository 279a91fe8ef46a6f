"""The blog's inbox, as `fedipress serve` runs it, accepts a Follow from a real Fedify server.

Fedify (as in Ghost, Hollo, Hackers' Pub) knocks with RFC 9421 first on an origin it has not
seen, and retries with draft-cavage after a 400, 401 or any status above 401 (FEDERATION.md §4.5);
it then expects an Accept, signed by the blog and embedding its Follow (FEDERATION.md §3.2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from tests.conftest import write_site
from tests.e2e.serving import Serve
from tests.peers.fedify_peer import FedifyPeer

SITE = """
-- fedipress.yaml --
title: Fedify Follow
base_url: https://blog.example/
fediverse:
  username: blog
-- content/posts/hello.md --
---
title: Hello
date: 2025-01-02
---
Hello, Fedify.
"""


@pytest.fixture
def blog(tmp_path: Path) -> Iterator[Serve]:
    site = write_site(tmp_path / "site", SITE)
    generate_keys(site, load_config(site))
    serve = Serve(site).start()
    try:
        yield serve
    finally:
        serve.stop()


def test_blog_inbox__accepts_a_fedify_follow(blog: Serve, fedify_peer: FedifyPeer) -> None:
    # Given the blog actor, served at the address `fedipress serve` printed
    blog_actor = blog.url.rstrip("/") + "/ap/actor"
    blog_inbox = blog.url.rstrip("/") + "/ap/inbox"
    # When Fedify's alice follows it
    result = fedify_peer.follow(blog_actor)
    # Then the Follow was delivered: RFC 9421 first, and draft-cavage only if that was refused
    context = f"peer log: {fedify_peer.log()}\nserve stderr:\n{blog.text('err')}"
    assert result["delivered"] is True, f"{result['error']}\n{context}"
    follow_id = result["activity"]["id"]
    knocks = [(e["scheme"], e["status"]) for e in fedify_peer.log() if e["url"] == blog_inbox]
    assert knocks, context
    assert knocks[0][0] == "rfc9421", context
    if knocks[0][1] in (400, 401):
        assert knocks == [knocks[0], ("draft-cavage", 202)], context
    else:
        assert knocks == [("rfc9421", 202)], context
    # and within ~10 s alice received the blog's Accept of that Follow, verified by Fedify.
    accept = fedify_peer.wait_for_received(
        lambda r: r["type"] == "Accept" and r["object"] == follow_id, timeout=10
    )
    assert accept["verified"] is True, f"{accept}\n{context}"
    assert accept["status"] == 202
    assert accept["actor"] == blog_actor
    assert accept["inbox"] == "personal"
    assert accept["scheme"] == "draft-cavage"  # what the blog sends (FEDERATION.md §4.1)
    embedded = accept["body"]["object"]
    assert isinstance(embedded, dict), "FEDERATION.md §3.2: embed the Follow, not just its id"
    assert (embedded["id"], embedded["type"], embedded["actor"]) == (
        follow_id,
        "Follow",
        fedify_peer.actor_url,
    )


def test_blog_inbox__fedify_retries_with_cavage_when_rfc9421_is_refused(
    tmp_path: Path, fedify_peer: FedifyPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a blog whose inbox accepts only draft-cavage signatures (a new origin for alice)
    monkeypatch.setenv("FEDIPRESS_SIGNATURE_SCHEMES", "cavage")
    site = write_site(tmp_path / "site", SITE)
    generate_keys(site, load_config(site))
    blog = Serve(site).start()
    try:
        blog_actor = blog.url.rstrip("/") + "/ap/actor"
        blog_inbox = blog.url.rstrip("/") + "/ap/inbox"
        # When Fedify's alice follows it
        result = fedify_peer.follow(blog_actor)
        context = f"peer log: {fedify_peer.log()}\nserve stderr:\n{blog.text('err')}"
        assert result["delivered"] is True, f"{result['error']}\n{context}"
        # Then the RFC 9421 first knock got 401 and the draft-cavage retry 202
        knocks = [(e["scheme"], e["status"]) for e in fedify_peer.log() if e["url"] == blog_inbox]
        assert knocks == [("rfc9421", 401), ("draft-cavage", 202)], context
        # and the Accept of that Follow reached alice, verified by Fedify
        follow_id = result["activity"]["id"]
        accept = fedify_peer.wait_for_received(
            lambda r: r["type"] == "Accept" and r["object"] == follow_id, timeout=10
        )
        assert accept["verified"] is True, f"{accept}\n{context}"
    finally:
        blog.stop()
