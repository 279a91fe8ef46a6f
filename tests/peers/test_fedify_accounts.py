"""Accounts that follow the author's life, against a real Fedify server (FEDERATION.md §13,
§4.6, §8): a topic account followed on its own, a key rotation, a move.

Fedify records an activity as verified only after checking the HTTP Signature with the key
it fetched (and caches) for the signer, and calling its inbox listener. On a Move it does
what a follower's server does: it fetches the target, checks its alsoKnownAs, and undoes
the old follow.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fedipress.app.keyfiles import generate_missing_keys, retiring_path
from fedipress.cli.main import main
from fedipress.config import load_config
from fedipress.federation.keys import load_public_key
from fedipress.preview.rebuild import SERVE_DATABASE, SERVE_DIR
from tests.conftest import write_site
from tests.e2e.serving import Serve
from tests.peers.fedify_peer import FedifyPeer, Record

TOPICS = """
-- fedipress.yaml --
title: Fedify Topics
base_url: https://blog.example/
fediverse:
  username: blog
  accounts:
    - username: rust
      tags: [rust]
-- content/posts/hello.md --
---
title: Hello
date: 2025-01-02
tags: [rust]
---
An old Rust post, there before anyone followed.
"""

PLAIN = """
-- fedipress.yaml --
title: Fedify Moves
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


def post(title: str, body: str, *tags: str) -> str:
    listed = f"tags: [{', '.join(tags)}]\n" if tags else ""
    return f"---\ntitle: {title}\ndate: 2025-03-04\n{listed}---\n{body}\n"


def signed_with(record: Record, pem: str) -> bool:
    """Whether the draft-cavage signature of a POST the peer received verifies with `pem`."""
    headers = record["headers"]
    fields = dict(re.findall(r'(\w+)="([^"]*)"', headers["signature"]))
    path = "/inbox" if record["inbox"] == "shared" else "/users/alice/inbox"
    lines = [
        f"(request-target): post {path}"
        if name == "(request-target)"
        else f"{name}: {headers[name]}"
        for name in fields["headers"].split()
    ]
    try:
        load_public_key(pem).verify(
            base64.b64decode(fields["signature"]),
            "\n".join(lines).encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return False
    return True


class Blog:
    """A `fedipress serve` site; `cli` runs fedipress against serve's store and folder."""

    def __init__(self, tmp_path: Path, site_text: str, *serve_args: str) -> None:
        self.site = write_site(tmp_path / "site", site_text)
        generate_missing_keys(self.site, load_config(self.site))
        self.serve = Serve(self.site, *serve_args).start()
        self.base = self.serve.url.rstrip("/")
        self.actor = f"{self.base}/ap/actor"

    def use_serve_address(self) -> None:
        """fedipress.yaml names the address serve answers at, so the CLI's build and
        publish make the documents serve serves."""
        config = self.site / "fedipress.yaml"
        config.write_text(config.read_text().replace("https://blog.example/", self.serve.url))

    def cli(self, *args: str) -> Result:
        env = {
            "FEDIPRESS_DATABASE_URL": f"sqlite:{SERVE_DATABASE}",
            "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1",
        }
        result = CliRunner().invoke(main, list(args), env=env)
        assert result.exit_code == 0, f"fedipress {' '.join(args)}:\n{result.output}"
        return result

    def build_and_publish(self) -> str:
        served = str(self.site / SERVE_DIR)
        self.cli("build", str(self.site), "--output", served)
        return self.cli("publish", str(self.site), "--output", served).stdout

    def context(self) -> str:
        return f"serve stdout:\n{self.serve.text('out')}\nserve stderr:\n{self.serve.text('err')}"

    def stop(self) -> None:
        self.serve.stop()


@pytest.fixture
def blog_factory(tmp_path: Path) -> Iterator[Callable[..., Blog]]:
    blogs: list[Blog] = []

    def make(site_text: str, *serve_args: str) -> Blog:
        blogs.append(Blog(tmp_path, site_text, *serve_args))
        return blogs[-1]

    yield make
    for blog in blogs:
        blog.stop()


def verified(peer: FedifyPeer, blog: Blog, kind: str, match: Callable[[Record], bool]) -> Record:
    record = peer.wait_for_received(lambda r: r["type"] == kind and match(r), timeout=15)
    assert record["verified"] is True, f"{record}\n{blog.context()}"
    return record


def test_topic_account__a_follower_of_it_alone_gets_exactly_its_posts(
    blog_factory: Callable[..., Blog], fedify_peer: FedifyPeer
) -> None:
    blog = blog_factory(TOPICS)
    rust = f"{blog.base}/ap/topics/rust/actor"
    crab = f"{blog.base}/ap/posts/crab"
    posts = blog.site / "content" / "posts"

    # Given Fedify's alice follows the topic account @rust, and only it
    follow = fedify_peer.follow(rust)
    assert follow["delivered"] is True, f"{follow['error']}\n{blog.context()}"
    accept = verified(
        fedify_peer, blog, "Accept", lambda r: r["object"] == follow["activity"]["id"]
    )
    assert accept["actor"] == rust  # accepted by @rust, signed with @rust's key

    # When a post tagged rust and a post without it are saved
    (posts / "loaf.md").write_text(post("Loaf", "Sourdough, not Rust.", "bread"))
    (posts / "crab.md").write_text(post("Crab", "Ferris says hi.", "rust"))
    # Then alice gets @rust's boost of the Rust post: the blog's own object, by reference
    announce = verified(fedify_peer, blog, "Announce", lambda r: r["object"] == crab)
    assert announce["actor"] == rust
    assert announce["body"]["cc"] == [blog.actor, f"{blog.base}/ap/topics/rust/followers"]

    # When the Rust post is edited, alice gets the blog's Update of it
    (posts / "crab.md").write_text(post("Crab", "Ferris says hello.", "rust"))
    update = verified(fedify_peer, blog, "Update", lambda r: r["object"] == crab)
    assert update["actor"] == blog.actor
    assert "Ferris says hello." in update["body"]["object"]["content"]

    # When it is removed, alice gets the Delete and the Undo of the boost
    (posts / "crab.md").unlink()
    delete = verified(fedify_peer, blog, "Delete", lambda r: r["object"] == crab)
    undo = verified(fedify_peer, blog, "Undo", lambda r: r["actor"] == rust)
    assert delete["actor"] == blog.actor
    assert undo["body"]["object"]["id"] == announce["id"]

    # And nothing else reached her from the blog's accounts: not the other post, not the
    # old one, each activity once
    blog.serve.wait_for(r"^published 0 new, 0 edited, 1 removed, 1 boost undone")
    mine = [r for r in fedify_peer.received() if r["actor"] in (blog.actor, rust)]
    assert sorted(r["type"] for r in mine) == ["Accept", "Announce", "Delete", "Undo", "Update"]
    assert all(r["object"] in (crab, announce["id"], follow["activity"]["id"]) for r in mine)


def test_key_rotation__fedify_accepts_the_update_signed_with_the_old_key(
    blog_factory: Callable[..., Blog], fedify_peer: FedifyPeer
) -> None:
    blog = blog_factory(PLAIN, "--no-reload")
    blog.use_serve_address()
    old = (blog.site / "fedipress.pub.pem").read_text()
    # Given alice follows the blog: Fedify fetched and cached the blog's key
    follow = fedify_peer.follow(blog.actor)
    assert follow["delivered"] is True, follow["error"]
    verified(fedify_peer, blog, "Accept", lambda r: r["object"] == follow["activity"]["id"])

    # When the key is rotated, the site rebuilt (serve now serves the new key) and published
    blog.cli("keys", "rotate", str(blog.site))
    new = (blog.site / "fedipress.pub.pem").read_text()
    assert new != old
    assert "1 profile update" in blog.build_and_publish()
    # Then alice accepts the Update announcing the new key, signed with the old one
    update = verified(fedify_peer, blog, "Update", lambda r: r["object"] == blog.actor)
    assert update["body"]["object"]["publicKey"]["publicKeyPem"] == new
    assert signed_with(update, old) and not signed_with(update, new)
    # and the old private key is gone once delivered
    assert not retiring_path(blog.site, load_config(blog.site)).exists()

    # When a new post is published, it is signed with the new key, and Fedify verifies it
    (blog.site / "content" / "posts" / "news.md").write_text(post("News", "After the switch."))
    assert "1 new" in blog.build_and_publish()
    create = verified(fedify_peer, blog, "Create", lambda r: r["actor"] == blog.actor)
    assert signed_with(create, new) and not signed_with(create, old)


def test_move__fedify_verifies_it_and_follows_along(
    blog_factory: Callable[..., Blog], fedify_peer: FedifyPeer
) -> None:
    blog = blog_factory(PLAIN, "--no-reload")
    blog.use_serve_address()
    # Given alice follows the blog, and the peer's bob lists the blog as an alias
    follow = fedify_peer.follow(blog.actor)
    assert follow["delivered"] is True, follow["error"]
    verified(fedify_peer, blog, "Accept", lambda r: r["object"] == follow["activity"]["id"])
    fedify_peer.set_aliases(blog.actor)

    # When the blog moves to @bob, found by WebFinger on the peer
    moved = blog.cli("move", str(blog.site), "--to", f"@{fedify_peer.target_handle}").stdout
    assert "moved_to set" in moved
    assert load_config(blog.site).fediverse.moved_to == fedify_peer.target_url  # type: ignore[union-attr]
    # and the site is rebuilt and published
    assert "1 profile update, 1 move" in blog.build_and_publish()

    # Then alice receives the Move, verified; her server's alsoKnownAs check passes
    move = verified(fedify_peer, blog, "Move", lambda r: r["actor"] == blog.actor)
    assert move["body"]["target"] == fedify_peer.target_url
    assert move["move"]["verified"] is True, move
    assert blog.actor in move["move"]["aliases"]
    # and she undid her follow of the blog, which now lists her as gone to the new account
    assert move["move"]["undone"] is True
    listed = blog.cli("followers", "list", str(blog.site), "--moved").stdout
    assert f"{fedify_peer.actor_url}  re-followed {fedify_peer.target_url}" in listed
    # The old actor is still served, with movedTo: the Move stays verifiable
    actor = verified(fedify_peer, blog, "Update", lambda r: r["object"] == blog.actor)
    assert actor["body"]["object"]["movedTo"] == fedify_peer.target_url
