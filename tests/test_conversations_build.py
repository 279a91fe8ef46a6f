"""The build shows the conversations: replies threaded under each post, likes and boosts,
the post object's `replies`/`likes`/`shares`, avatars served from the site; a new reply
rewrites only its post's page and documents; hostile text renders inert; and a build that
cannot reach the store reads the inbox's public document over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.adapters.asgi import InboxASGI
from fedipress.app import BuildOptions, build
from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from fedipress.federation.keys import SigningKey, generate_private_key
from fedipress.federation.store import Interaction, Store, open_store
from fedipress.federation.store.base import ActorProfile
from fedipress.inbox.service import InboxService
from tests.conftest import write_site
from tests.inbox.remote import serve_in_thread

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BLOG = "https://blog.example"
HELLO = f"{BLOG}/ap/posts/hello"
ANN = "https://m.example/users/ann"
BOB = "https://g.example/users/bob"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2
SITE = """
-- fedipress.yaml --
title: Conversations
base_url: https://blog.example/
fediverse:
  username: blog
-- content/posts/hello.md --
---
title: Hello
date: 2025-01-02
---
Hello, Fediverse.
-- content/posts/other.md --
---
title: Other
date: 2025-01-03
---
Another post.
"""


def site_with_keys(root: Path, text: str = SITE) -> Path:
    site = write_site(root, text)
    generate_keys(site, load_config(site))
    return site


def reply(
    n: int, actor: str = ANN, parent: str = HELLO, depth: int = 0, html: str = "", **extra: object
) -> Interaction:
    values: dict[str, object] = {
        "id": f"{actor.rsplit('/users/', 1)[0]}/notes/{n}",
        "kind": "reply",
        "actor_id": actor,
        "object_id": HELLO,
        "state": "approved",
        "content_html": html or f"<p>Reply number {n}</p>",
        "url": f"{actor.rsplit('/users/', 1)[0]}/@x/{n}",
        "in_reply_to": parent,
        "published": T0 + timedelta(minutes=n),
        "depth": depth,
    }
    values.update(extra)
    return Interaction(**values)  # type: ignore[arg-type]


def seed(store: Store) -> None:
    store.put_profile(
        ActorProfile(
            ANN,
            "Ann Example",
            "ann@m.example",
            "https://m.example/@ann",
            T0,
            "https://m.example/a.png",
            "image/png",
            PNG,
        )
    )
    store.put_profile(ActorProfile(BOB, "Bob", "bob@g.example", "https://g.example/@bob", T0))
    first = reply(1)
    store.add_interaction(first, T0)
    store.add_interaction(reply(2, BOB, first.id, 1, summary="spoilers"), T0)
    store.add_interaction(Interaction(f"{ANN}#like", "like", ANN, HELLO), T0)
    store.add_interaction(Interaction(f"{BOB}#boost", "announce", BOB, HELLO), T0)
    store.add_interaction(reply(3, state="pending", html="<p>Held back</p>"), T0)


def page(out: Path, slug: str = "hello") -> str:
    return (out / "posts" / slug / "index.html").read_text(encoding="utf-8")


def conversation(html: str) -> str:
    found = re.search(r'<section class="conversation".*?</section>', html, re.S)
    assert found, "no conversation section"
    return found.group(0)


def replies_html(html: str) -> str:
    """The replies as shown (the part remote text goes into)."""
    section = conversation(html)
    return section[section.index('<h3 class="replies-title">') : section.index("data-new-replies")]


def doc(out: Path, path: str) -> dict[str, object]:
    return json.loads((out / path).read_text(encoding="utf-8"))


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.stat().st_ino)
        for p in out.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    site = site_with_keys(tmp_path / "site")
    store = open_store(None, site)  # .fedipress/inbox.db: the self-hosted inbox's store
    seed(store)
    store.close()
    yield site


def test_build__shows_the_thread_reactions_and_collections(site: Path) -> None:
    result = build(site)
    out = site / "_site"
    section = conversation(page(out))
    # The replies, threaded: Bob's answer nests under Ann's, its warning folded
    assert "Reply number 1" in section and "Reply number 2" in section
    assert section.index("Reply number 1") < section.index("Reply number 2")
    assert re.search(r'depth-1.*Reply number 1.*<ol class="replies">.*depth-2', section, re.S)
    assert re.search(r"<details class=\"cw reply-cw\">\s*<summary><bdi>spoilers</bdi>", section)
    assert "Held back" not in section
    assert "2 replies" in section and "1 like" in section and "1 boost" in section
    # Names, handles, profile links; Ann's avatar a file of the site, Bob's initials
    assert "<bdi>Ann Example</bdi>" in section and "@ann@m.example" in section
    assert 'href="https://m.example/@ann"' in section
    avatar = re.search(r'src="(/avatars/[0-9a-f]+\.png)"', section)
    assert avatar and (out / avatar.group(1).lstrip("/")).read_bytes() == PNG
    assert '<span class="avatar initials" aria-hidden="true">B</span>' in section
    # No request to another server: every src is a site path
    assert all(src.startswith("/") for src in re.findall(r'\ssrc="([^"]*)"', page(out)))
    # The join box: the object id to paste
    assert f'<code class="handle object-id">{HELLO}</code>' in section
    # The other post has no replies but still invites them
    assert "No replies yet." in conversation(page(out, "other"))
    # The ActivityPub side: direct replies listed, counts in likes and shares
    obj = doc(out, "ap/posts/hello")
    assert obj["replies"]["first"]["orderedItems"] == ["https://m.example/notes/1"]  # type: ignore[index]
    assert obj["replies"]["totalItems"] == 1  # type: ignore[index]
    assert obj["likes"]["totalItems"] == obj["shares"]["totalItems"] == 1  # type: ignore[index]
    assert doc(out, "ap/replies/hello")["first"] == obj["replies"]["first"]  # type: ignore[index]
    assert doc(out, "ap/likes/hello") == {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{BLOG}/ap/likes/hello",
        "type": "OrderedCollection",
        "totalItems": 1,
    }
    assert doc(out, "ap/shares/hello")["totalItems"] == 1
    assert result.warnings == ()


def test_build__a_new_reply_rewrites_only_that_posts_page_and_documents(site: Path) -> None:
    build(site)
    out = site / "_site"
    before = snapshot(out)
    # When a reply to "hello" arrives and the site is built again
    store = open_store(None, site)
    store.add_interaction(reply(9, BOB, html="<p>A late reply</p>"), T0)
    store.close()
    result = build(site)
    # Then only hello's page, object and replies collection were written
    after = snapshot(out)
    changed = sorted(p for p in after if after[p] != before.get(p))
    assert changed == ["ap/posts/hello", "ap/replies/hello", "posts/hello/index.html"], changed
    assert result.rendered == 3  # nothing else was even rendered
    assert "A late reply" in page(out)
    # When nothing changed, nothing is rendered
    assert build(site).unchanged


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script><p>x</p>",
        '<p onclick="alert(1)">x</p><img src=x onerror=alert(1)>',
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" JaVaScRiPt:alert(1)">x</a><a href="data:text/html,<script>1</script>">y</a>',
        '<svg><script>alert(1)</script></svg><math><mi xlink:href="javascript:1">z</mi></math>',
        '<p style="background:url(javascript:alert(1))">x</p><style>*{color:red}</style>',
        "<p>unclosed <b>bold <i>italic <a href='https://ok.example'>link",
        '<iframe src="https://evil.example"></iframe><object data="x"></object>',
        '<form action="https://evil.example"><input name=p></form>',
        "</section></main><script>alert(1)</script>",
        '<p>&lt;script&gt;alert(1)&lt;/script&gt; <a href="https://k.example" target="_top">t</a>',
        "<p>\u202eright-to-left override <bdo dir=rtl>reversed</bdo></p>",
    ],
)
def test_build__hostile_reply_html_renders_inert(tmp_path: Path, hostile: str) -> None:
    site = site_with_keys(tmp_path / "site")
    store = open_store(None, site)
    # Written into the store directly, as if the inbox had not sanitized it
    store.add_interaction(reply(1, html=hostile), T0)
    store.close()
    build(site)
    section = conversation(page(site / "_site"))
    lowered = replies_html(page(site / "_site")).lower()
    for bad in (
        "<script",
        "onerror",
        "onclick",
        "javascript:",
        "<svg",
        "<math",
        "style=",
        "<style",
        "<iframe",
        "<object",
        "<form",
        "<input",
        "data:text",
    ):
        assert bad not in lowered, (bad, section)
    assert section.count("<section") == 1 and section.count("</section>") == 1
    assert "\u202e" not in section and "<bdo" not in lowered


def test_build__hostile_names_handles_and_links_render_inert(tmp_path: Path) -> None:
    site = site_with_keys(tmp_path / "site")
    store = open_store(None, site)
    evil = "https://e.example/users/evil"
    store.put_profile(
        ActorProfile(
            evil,
            '<img src=x onerror=alert(1)>"><script>alert(1)</script>\u202eLIVE\u2066',
            'x"><script>1</script>@e.example',
            "javascript:alert(1)",
            T0,
            None,
            "image/svg+xml",
            b"<svg onload=alert(1)>",
        )
    )
    store.add_interaction(reply(1, evil, url="javascript:alert(2)"), T0)
    store.add_interaction(Interaction(f"{evil}#like", "like", evil, HELLO), T0)
    store.close()
    build(site)
    out = site / "_site"
    section = conversation(page(out))
    lowered = section.lower()
    assert "<script" not in lowered and "onerror" not in lowered and "javascript:" not in lowered
    assert "\u202e" not in section and "\u2066" not in section
    assert "<img src=x" not in section and "svg" not in lowered
    assert not (out / "avatars").exists()  # an SVG is never served


def test_build__non_public_hidden_and_blocked_never_shown(tmp_path: Path) -> None:
    site = site_with_keys(tmp_path / "site")
    store = open_store(None, site)
    store.add_interaction(reply(1, html="<p>Followers only</p>", public=False), T0)
    store.add_interaction(reply(2, html="<p>Hidden by the author</p>", state="hidden"), T0)
    store.add_interaction(reply(3, BOB, html="<p>From a blocked domain</p>"), T0)
    store.add_interaction(Interaction(f"{BOB}#like", "like", BOB, HELLO), T0)
    store.add_block("domain", "g.example", T0)
    store.close()
    build(site)
    out = site / "_site"
    section = conversation(page(out))
    for text in ("Followers only", "Hidden by the author", "From a blocked domain", "1 like"):
        assert text not in section
    obj = doc(out, "ap/posts/hello")
    assert obj["replies"]["totalItems"] == 0  # type: ignore[index]
    assert obj["likes"]["totalItems"] == 0  # type: ignore[index]


def test_build__reads_the_inbox_public_document_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the inbox runs elsewhere (here on loopback) with its own store
    inbox_dir = site_with_keys(tmp_path / "inbox")
    store = open_store(None, inbox_dir)
    seed(store)
    config = load_config(inbox_dir)
    service = InboxService.for_site(
        config, store, SigningKey(f"{BLOG}/ap/actor#main-key", generate_private_key())
    )
    try:
        with serve_in_thread(InboxASGI(service)) as server:
            url = f"http://127.0.0.1:{server.port}/ap/interactions"  # type: ignore[attr-defined]
            # and the site, built elsewhere, names the inbox's public document
            site = site_with_keys(
                tmp_path / "site",
                SITE.replace("  username: blog", f"  username: blog\n  interactions_from: {url}"),
            )
            monkeypatch.setenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "1")  # loopback in tests
            # When it is built
            result = build(site)
            # Then the pages show the approved interactions, avatars fetched and served
            section = conversation(page(site / "_site"))
            assert "Reply number 1" in section and "Reply number 2" in section
            assert "Held back" not in section
            avatar = re.search(r'src="(/avatars/[0-9a-f]+\.png)"', section)
            assert avatar and (site / "_site" / avatar.group(1).lstrip("/")).read_bytes() == PNG
            assert result.warnings == ()
    finally:
        asyncio.run(service.aclose())
        store.close()
    # When the inbox is gone and the site is built again (a post edited)
    (site / "content" / "posts" / "other.md").write_text(
        "---\ntitle: Other\ndate: 2025-01-03\n---\nEdited.\n", encoding="utf-8"
    )
    result = build(site)
    # Then the build warns and keeps showing what it read last
    assert any("could not read the likes" in w.message for w in result.warnings)
    assert "Reply number 2" in conversation(page(site / "_site"))


def test_build__without_a_store_or_document_shows_an_empty_conversation(tmp_path: Path) -> None:
    site = site_with_keys(tmp_path / "site")
    build(site)
    assert not (site / ".fedipress" / "inbox.db").exists()  # the build creates no database
    assert "No replies yet." in conversation(page(site / "_site"))


def test_build__a_site_without_fediverse_has_no_conversation(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE.replace("fediverse:\n  username: blog\n", ""))
    build(site)
    assert 'class="conversation"' not in page(site / "_site")
    assert os.listdir(site / "_site")  # built


def test_build_options__interactions_database_is_read(tmp_path: Path) -> None:
    site = site_with_keys(tmp_path / "site")
    store = open_store("sqlite:elsewhere.db", site)
    seed(store)
    store.close()
    build(site, BuildOptions(interactions_database="sqlite:elsewhere.db"))
    assert "Reply number 1" in page(site / "_site")
