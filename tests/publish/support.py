"""What the publishing tests share: a blog site on disk with its key pair and followers, the
real CLI, and a check of the blog's signatures with fedipress's own verify_request against
the public key the site publishes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result

from fedipress.app.keyfiles import generate_keys
from fedipress.cli.main import main
from fedipress.config import load_config
from fedipress.federation.signatures import RemoteKey, verify_request
from fedipress.federation.store import Follower, Store, open_store
from tests.conftest import write_site
from tests.inbox.remote import Recorded, RemoteServer

BLOG = "https://blog.example"
ACTOR = f"{BLOG}/ap/actor"
KEY_ID = f"{ACTOR}#main-key"
ENV = {"FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1"}

CONFIG = """
-- fedipress.yaml --
title: Publishing
base_url: {base_url}
fediverse:
  username: blog
"""


def post_text(title: str, body: str, day: int, uid: str | None = None) -> str:
    front = f"title: {title}\ndate: 2025-01-{day:02d}\n" + (f"id: {uid}\n" if uid else "")
    return f"---\n{front}---\n{body}\n"


@dataclass
class Blog:
    """A site folder with keys; `post`/`remove` edit its content, `cli` runs fedipress."""

    root: Path
    database_url: str | None = None  # FEDIPRESS_DATABASE_URL; None: .fedipress/inbox.db

    @classmethod
    def create(
        cls,
        root: Path,
        base_url: str = BLOG + "/",
        database_url: str | None = None,
        **posts: str,
    ) -> Blog:
        write_site(root, CONFIG.format(base_url=base_url))
        (root / "content" / "posts").mkdir(parents=True, exist_ok=True)
        blog = cls(root, database_url)
        for slug, text in posts.items():
            blog.post(slug, text)
        generate_keys(root, load_config(root))
        return blog

    def post(self, slug: str, text: str) -> None:
        (self.root / "content" / "posts" / f"{slug}.md").write_text(text, encoding="utf-8")

    def remove(self, slug: str) -> None:
        (self.root / "content" / "posts" / f"{slug}.md").unlink()

    def object_id(self, slug: str) -> str:
        return f"{BLOG}/ap/posts/{slug}"

    @property
    def public_pem(self) -> str:
        return (self.root / "fedipress.pub.pem").read_text()

    @property
    def env(self) -> dict[str, str]:
        """The environment the CLI runs with."""
        url = {"FEDIPRESS_DATABASE_URL": self.database_url} if self.database_url else {}
        return {**ENV, **url}

    def store(self) -> Store:
        """The store the CLI uses (by default .fedipress/inbox.db)."""
        return open_store(self.database_url, self.root)

    def cli(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, [*args], env=self.env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, f"fedipress {' '.join(args)}:\n{result.output}"
        return result

    def build(self) -> None:
        self.cli("build", str(self.root))

    def publish(self, *args: str) -> str:
        return self.cli("publish", str(self.root), *args).stdout


def add_followers(store: Store, remote: RemoteServer, *names: str, shared: bool = True) -> None:
    """Accepted followers on the remote server, with its shared inbox unless `shared` is off."""
    now = datetime.now(UTC)
    for name in names:
        actor = remote.actor_id(name)
        store.upsert_follower(
            Follower(
                actor,
                remote.inbox(name),
                remote.shared_inbox if shared else None,
                f"@{name}@127.0.0.1",
                f"{actor}#follow",
                "accepted",
                now,
                now,
            )
        )


def verify_blog_post(recorded: Recorded, remote: RemoteServer, public_pem: str) -> str:
    """Check a POST the blog made, as a receiver would: fedipress's verify_request with the
    key the site publishes. Returns the key id."""
    key = RemoteKey(KEY_ID, ACTOR, public_pem)

    async def fetch_key(key_id: str, refresh: bool) -> RemoteKey | None:
        return key if key_id == KEY_ID else None

    result = asyncio.run(
        verify_request(
            recorded.method,
            recorded.path,
            recorded.headers,
            recorded.body,
            public_host=f"127.0.0.1:{remote.port}",
            public_scheme="http",
            fetch_key=fetch_key,
            now=datetime.now(UTC),
        )
    )
    assert result.ok, result.reason
    return result.key_id
