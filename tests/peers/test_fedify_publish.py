"""A real Fedify server follows a `fedipress serve` site and receives its posts: serve
rebuilds on every save and publishes new, edited and removed posts to its followers, as
`fedipress publish` does after a deploy (FEDERATION.md §5.1, §5.5, §5.6).

Fedify records an activity as verified only after checking the blog's HTTP Signature (it
fetches the blog's actor and key from serve) and calling its inbox listener.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedipress.app.keyfiles import generate_keys
from fedipress.cli.main import main
from fedipress.config import load_config
from fedipress.preview.rebuild import SERVE_DATABASE, SERVE_DIR
from tests.conftest import write_site
from tests.e2e.serving import Serve
from tests.peers.fedify_peer import FedifyPeer, Record

SITE = """
-- fedipress.yaml --
title: Fedify Publish
base_url: https://blog.example/
fediverse:
  username: blog
-- content/posts/hello.md --
---
title: Hello
date: 2025-01-02
---
An old post, there before anyone followed.
"""


def post(body: str) -> str:
    return f"---\ntitle: News\ndate: 2025-03-04\n---\n{body}\n"


@pytest.fixture
def blog(tmp_path: Path) -> Iterator[Serve]:
    site = write_site(tmp_path / "site", SITE)
    generate_keys(site, load_config(site))
    serve = Serve(site).start()
    try:
        yield serve
    finally:
        serve.stop()


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_serve__publishes_new_edited_and_removed_posts_to_a_fedify_follower(
    blog: Serve, fedify_peer: FedifyPeer
) -> None:
    base = blog.url.rstrip("/")
    actor = f"{base}/ap/actor"
    news = f"{base}/ap/posts/news"
    news_file = blog.site / "content" / "posts" / "news.md"

    def context() -> str:
        return f"serve stdout:\n{blog.text('out')}\nserve stderr:\n{blog.text('err')}"

    def received(kind: str, match) -> Record:  # type: ignore[no-untyped-def]
        record = fedify_peer.wait_for_received(
            lambda r: r["type"] == kind and r["actor"] == actor and match(r), timeout=15
        )
        assert record["verified"] is True, f"{record}\n{context()}"
        assert record["status"] == 202
        return record

    # Given Fedify's alice follows the blog (the blog's Accept arrived)
    follow = fedify_peer.follow(actor)
    assert follow["delivered"] is True, f"{follow['error']}\n{context()}"
    received("Accept", lambda r: r["object"] == follow["activity"]["id"])

    # When a new post is saved
    news_file.write_text(post("Fresh from the dev server."), encoding="utf-8")
    # Then serve rebuilds, publishes, and alice receives a Create she verified, at her
    # shared inbox, embedding the post's text
    create = received("Create", lambda r: r["object"] == news)
    assert create["id"] == news + "#create", context()
    assert create["inbox"] == "shared"
    assert "Fresh from the dev server." in create["body"]["object"]["content"]
    assert create["body"]["object"]["attributedTo"] == actor
    blog.wait_for(r"^published 1 new, 0 edited, 0 removed to 1 inboxes$")

    # When the post is edited
    news_file.write_text(post("Corrected on the dev server."), encoding="utf-8")
    # Then alice receives a verified Update with the new text and a newer `updated`
    update = received("Update", lambda r: r["object"] == news)
    assert update["id"].startswith(news + "#update-"), context()
    edited = update["body"]["object"]
    assert "Corrected on the dev server." in edited["content"]
    assert when(edited["updated"]) > when(create["body"]["object"]["published"])

    # When the post file is deleted
    news_file.unlink()
    # Then alice receives a verified Delete of it, with a Tombstone
    delete = received("Delete", lambda r: r["object"] == news)
    assert delete["id"].startswith(news + "#delete-"), context()
    assert delete["body"]["object"]["type"] == "Tombstone"

    # and each activity arrived exactly once, and the old post was never sent
    mine = [r for r in fedify_peer.received() if r["actor"] == actor]
    assert [r["type"] for r in mine] == ["Accept", "Create", "Update", "Delete"], mine
    assert all(r["object"] != f"{base}/ap/posts/hello" for r in mine)


def test_publish_cli__sends_to_a_follower_that_followed_a_serve_site(
    tmp_path: Path, fedify_peer: FedifyPeer
) -> None:
    # Given a `fedipress serve` site without rebuilds (so serve publishes nothing itself),
    # whose fedipress.yaml names the address it is served at
    site = write_site(tmp_path / "site", SITE)
    generate_keys(site, load_config(site))
    blog = Serve(site, "--no-reload").start()
    try:
        base = blog.url.rstrip("/")
        actor = f"{base}/ap/actor"
        config_file = site / "fedipress.yaml"
        config_file.write_text(
            config_file.read_text().replace("https://blog.example/", blog.url), encoding="utf-8"
        )
        # and Fedify's alice following it, stored by serve's inbox
        follow = fedify_peer.follow(actor)
        assert follow["delivered"] is True, follow["error"]
        fedify_peer.wait_for_received(
            lambda r: r["type"] == "Accept" and r["object"] == follow["activity"]["id"]
        )
        # When a new post is built into the folder serve serves, and published from it by
        # the CLI with serve's store
        (site / "content" / "posts" / "news.md").write_text(post("Sent by the CLI."))
        served = site / SERVE_DIR
        env = {
            "FEDIPRESS_DATABASE_URL": f"sqlite:{SERVE_DATABASE}",
            "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1",
        }
        runner = CliRunner()
        built = runner.invoke(main, ["build", str(site), "--output", str(served)], env=env)
        assert built.exit_code == 0, built.output
        published = runner.invoke(main, ["publish", str(site), "--output", str(served)], env=env)
        assert published.exit_code == 0, published.output
        assert "1 new, 0 edited, 0 removed" in published.stdout
        # Then alice receives the Create, verified with the key serve publishes
        news = f"{base}/ap/posts/news"
        create = fedify_peer.wait_for_received(
            lambda r: r["type"] == "Create" and r["object"] == news, timeout=15
        )
        assert create["verified"] is True, f"{create}\n{blog.text('err')}"
        assert create["actor"] == actor
        assert "Sent by the CLI." in create["body"]["object"]["content"]
    finally:
        blog.stop()
