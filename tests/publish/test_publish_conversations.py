"""Publishing and conversations: a like or reply changes the post as served, never the post as
sent (no Update goes out for it), and a removed post's interactions leave with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fedipress.federation.store import Interaction
from tests.inbox.remote import RemoteServer
from tests.publish.support import Blog, add_followers, post_text

NOW = datetime(2025, 2, 1, tzinfo=UTC)


def test_publish__a_like_and_a_reply_send_no_update_and_a_removal_forgets_them(
    tmp_path: Path, remote: RemoteServer
) -> None:
    # Given a published site with two posts and a follower
    blog = Blog.create(
        tmp_path / "site",
        hello=post_text("Hello", "Hello.", 1),
        news=post_text("News", "News.", 2),
    )
    store = blog.store()
    add_followers(store, remote, "alice")
    store.close()
    blog.build()
    blog.publish()
    news = blog.object_id("news")
    alice = remote.actor_id("alice")
    # When a like and a reply of "news" arrive, and the site is built and published again
    store = blog.store()
    store.add_interaction(Interaction(f"{alice}#like/1", "like", alice, news), NOW)
    store.add_interaction(
        Interaction(
            f"{alice}/statuses/1", "reply", alice, news, "approved", "<p>Hi</p>", None, news, NOW
        ),
        NOW,
    )
    store.close()
    blog.build()
    out = blog.publish()
    # Then the served object counts them, and nothing is sent: a like is no edit
    served = json.loads((blog.root / "_site" / "ap" / "posts" / "news").read_text())
    assert served["likes"]["totalItems"] == 1
    assert served["replies"]["first"]["orderedItems"] == [f"{alice}/statuses/1"]
    assert "0 new, 0 edited, 0 removed" in out
    # When the post is removed and published
    blog.remove("news")
    blog.build()
    assert "0 new, 0 edited, 1 removed" in blog.publish()
    # Then its like and reply are forgotten
    store = blog.store()
    try:
        assert store.list_interactions(object_id=news) == []
    finally:
        store.close()
