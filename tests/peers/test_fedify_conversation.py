"""A real Fedify server talks with a `fedipress serve` blog, and the conversation comes home:
it follows, replies, replies to its reply, likes, boosts, undoes the like, edits and deletes
its reply. After each step serve's inbox has verified and stored it, serve has rebuilt the
touched page on its own, and the served post page and its `replies`, `likes` and `shares`
documents show exactly the expected state (docs/federation.md "Replies and moderation",
FEDERATION.md §5.12)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from tests.conftest import write_site
from tests.e2e.serving import Serve
from tests.peers.fedify_peer import FedifyPeer

SITE = """
-- fedipress.yaml --
title: Fedify Conversation
base_url: https://blog.example/
fediverse:
  username: blog
-- content/posts/hello.md --
---
title: Hello
date: 2025-01-02
---
Talk to me.
"""
WAIT = 20.0


@pytest.fixture
def blog(tmp_path: Path) -> Iterator[Serve]:
    site = write_site(tmp_path / "site", SITE)
    generate_keys(site, load_config(site))
    serve = Serve(site).start()
    try:
        yield serve
    finally:
        serve.stop()


class State:
    """What the served blog shows of the conversation on /posts/hello/."""

    def __init__(self, client: httpx.Client, base: str) -> None:
        self.client = client
        self.base = base

    def read(self) -> dict[str, Any]:
        html = self.client.get("/posts/hello/").text
        found = re.search(r'<section class="conversation".*?</section>', html, re.S)
        section = found.group(0) if found else ""
        docs = {
            name: self.client.get(f"/ap/{name}/hello").json()
            for name in ("posts", "replies", "likes", "shares")
        }
        return {
            "section": section,
            "replies": docs["replies"]["first"]["orderedItems"],
            "likes": docs["likes"]["totalItems"],
            "shares": docs["shares"]["totalItems"],
            "object": docs["posts"],
        }

    def wait(
        self, check: Callable[[dict[str, Any]], bool], what: str, blog: Serve
    ) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while True:
            state = self.read()
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the blog never showed {what}; it shows:\n{state['section']}\n"
                    f"replies {state['replies']}, likes {state['likes']}, shares {state['shares']}"
                    f"\nserve stdout:\n{blog.text('out')}\nserve stderr:\n{blog.text('err')}"
                )
            time.sleep(0.2)


def test_serve__a_fedify_conversation_shows_on_the_post_and_in_its_collections(
    blog: Serve, fedify_peer: FedifyPeer
) -> None:
    base = blog.url.rstrip("/")
    actor = f"{base}/ap/actor"
    post = f"{base}/ap/posts/hello"
    client = httpx.Client(base_url=base, timeout=10.0, trust_env=False)
    state = State(client, base)
    try:
        # Given Fedify's alice follows the blog (so her replies are shown at once)
        follow = fedify_peer.follow(actor)
        assert follow["delivered"] is True, f"{follow['error']}\n{blog.text('err')}"
        fedify_peer.wait_for_received(
            lambda r: r["type"] == "Accept" and r["object"] == follow["activity"]["id"]
        )
        assert "No replies yet." in state.read()["section"]

        # When she replies to the post
        sent = fedify_peer.reply(actor, post, "<p>First! A reply from Fedify.</p>")
        assert sent["delivered"] is True, sent["error"]
        first = sent["activity"]["object"]["id"]
        # Then the page shows it, with her name, her avatar served by the blog, and the
        # object's replies list it
        now = state.wait(
            lambda s: "A reply from Fedify." in s["section"] and s["replies"] == [first],
            "the reply",
            blog,
        )
        assert now["object"]["replies"]["totalItems"] == 1
        assert "<bdi>Alice (Fedify test peer)</bdi>" in now["section"]
        avatar = re.search(r'src="(/avatars/[0-9a-f]+\.png)"', now["section"])
        assert avatar, now["section"]
        image = client.get(avatar.group(1))
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        assert (now["likes"], now["shares"]) == (0, 0)

        # When she replies to her own reply
        sent = fedify_peer.reply(actor, first, "<p>And a follow-up to myself.</p>")
        second = sent["activity"]["object"]["id"]
        # Then it nests under the first on the page; the post's replies still list only
        # the direct reply (the nested one is in the first reply's own collection)
        now = state.wait(
            lambda s: "a follow-up to myself" in s["section"], "the nested reply", blog
        )
        assert re.search(r"First!.*<ol class=\"replies\">.*follow-up", now["section"], re.S)
        assert "2 replies" in now["section"]
        assert now["replies"] == [first]

        # When she likes and boosts the post
        like = fedify_peer.like(actor, post)["activity"]["id"]
        fedify_peer.announce(actor, post)
        # Then both are counted, on the page and in likes and shares
        # (the page and the documents are files of one rebuild, read one after the other:
        # wait for both, or a read between two writes sees one side only)
        now = state.wait(
            lambda s: (
                (s["likes"], s["shares"]) == (1, 1)
                and "1 like" in s["section"]
                and "1 boost" in s["section"]
            ),
            "a like and a boost",
            blog,
        )
        assert now["object"]["likes"]["totalItems"] == 1

        # When she undoes the like
        fedify_peer.undo(actor, like)
        # Then the like is gone, the boost stays
        now = state.wait(
            lambda s: s["likes"] == 0 and "1 like" not in s["section"], "the like undone", blog
        )
        assert now["shares"] == 1 and "1 boost" in now["section"]

        # When she edits her first reply
        fedify_peer.update_note(actor, first, "<p>Edited: a better first reply.</p>")
        # Then the page shows the new text only
        now = state.wait(lambda s: "a better first reply" in s["section"], "the edit", blog)
        assert "A reply from Fedify." not in now["section"]

        # When she deletes it
        fedify_peer.delete_note(actor, first)
        # Then it is gone, and so is her follow-up below it (shown only in its context)
        now = state.wait(
            lambda s: "a better first reply" not in s["section"] and s["replies"] == [],
            "the deletion",
            blog,
        )
        assert "follow-up to myself" not in now["section"]
        assert now["replies"] == [] and now["object"]["replies"]["totalItems"] == 0
        assert "No replies yet." in now["section"]
        assert second  # it stays stored: its author did not delete it
    finally:
        client.close()
    # And every step was rebuilt by serve on its own, without a file saved
    assert "conversation changed" not in blog.text("err")  # reported only when verbose
    assert len(re.findall(r"^built ", blog.text("out"), re.M)) >= 7
