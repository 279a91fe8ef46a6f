"""A post with a conversation in a real browser (Debian's Chromium, headless): the section
renders with the theme's styles, the script adds the form and the replies newer than the
page, nothing is asked of any other origin, and the console stays clean. Screenshots, light
and dark, desktop and mobile, go to test-output/screenshots/."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from fedipress.federation.store import Interaction, open_store
from fedipress.federation.store.base import ActorProfile
from fedipress.preview.rebuild import SERVE_DATABASE
from tests.conftest import write_site
from tests.e2e.serving import Serve
from tests.e2e.test_browser import SCREENSHOTS, Tab, browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SITE = """
-- fedipress.yaml --
title: Browser Conversation
base_url: https://blog.example/
fediverse:
  username: blog
-- content/posts/talk.md --
---
title: Let us talk
date: 2025-02-01
---
A post people answered.
"""
PEOPLE = [
    ("https://m.example/users/ann", "Ann Lee", "ann@m.example", PNG),
    ("https://g.example/users/bob", "Bob", "bob@g.example", None),
    ("https://r.example/users/sam", "سام (Sam)", "sam@r.example", None),
]


def seed(site: Path, base: str) -> None:
    """Replies three levels deep, one with a content warning, likes and boosts, in the
    preview inbox's own database."""
    post = f"{base}/ap/posts/talk"
    store = open_store(f"sqlite:{SERVE_DATABASE}", site)
    try:
        for actor, name, handle, avatar in PEOPLE:
            store.put_profile(
                ActorProfile(
                    actor,
                    name,
                    handle,
                    actor.replace("/users/", "/@"),
                    T0,
                    f"{actor}.png" if avatar else None,
                    "image/png" if avatar else None,
                    avatar,
                )
            )
        texts = [
            ("<p>What a lovely post. I tried it at home and it <strong>worked</strong>.</p>", ""),
            (
                '<p>Did you use the long method, <a href="https://g.example/@bob" '
                'class="u-url mention">@<span>bob</span></a>?</p>',
                "",
            ),
            ("<p>Yes! And it took all afternoon.</p><p>Worth it, though.</p>", "Long story"),
        ]
        parent = post
        for n, ((html, warning), (actor, *_)) in enumerate(zip(texts, PEOPLE, strict=True)):
            reply_id = f"{actor.rsplit('/users/', 1)[0]}/notes/{n}"
            store.add_interaction(
                Interaction(
                    reply_id,
                    "reply",
                    actor,
                    post,
                    "approved",
                    html,
                    reply_id.replace("/notes/", "/@x/"),
                    parent,
                    T0 + timedelta(hours=n),
                    summary=warning or None,
                    depth=n,
                ),
                T0,
            )
            parent = reply_id
        for i in range(25):  # more than the 20 shown before "more"
            actor = f"https://l{i}.example/users/fan{i}"
            store.add_interaction(Interaction(f"{actor}#like", "like", actor, post), T0)
        store.add_interaction(
            Interaction(f"{PEOPLE[1][0]}#boost", "announce", PEOPLE[1][0], post), T0
        )
    finally:
        store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Serve, Path]]:
    site = write_site(tmp_path / "site", SITE)
    generate_keys(site, load_config(site))
    serve = Serve(site).start()
    try:
        # The ids in the store use serve's own address; a save makes serve build them in.
        seed(site, serve.url.rstrip("/"))
        post = site / "content" / "posts" / "talk.md"
        post.write_text(post.read_text(encoding="utf-8") + "\nEdited.\n", encoding="utf-8")
        serve.wait_for(r"^built ", count=2)
        yield serve, site
    finally:
        serve.stop()


def test_browser__conversation_renders_styled_with_no_third_party_request(
    browser: Browser,  # noqa: F811
    served: tuple[Serve, Path],
) -> None:
    serve, site = served
    url = serve.url
    origin = url.rstrip("/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # A reply that reached the inbox after the build: the script shows it as newer
    store = open_store(f"sqlite:{SERVE_DATABASE}", site)
    ids = [i.object_id for i in store.list_interactions(kind="reply", limit=1)]
    store.add_interaction(
        Interaction(
            "https://m.example/notes/late",
            "reply",
            PEOPLE[0][0],
            ids[0],
            "approved",
            "<p>A late word <script>alert(1)</script>after the build.</p>",
            "https://m.example/@x/late",
            ids[0],
            T0 + timedelta(days=1),
        ),
        T0,
    )
    store.close()
    for scheme in ("light", "dark"):
        for device, viewport in (
            ("desktop", {"width": 1024, "height": 900}),
            ("mobile", {"width": 390, "height": 844}),
        ):
            tab = Tab(browser, scheme)
            tab.page.set_viewport_size(viewport)  # type: ignore[arg-type]
            requests: list[str] = []
            tab.page.on("request", lambda request, seen=requests: seen.append(request.url))
            try:
                response = tab.page.goto(url + "posts/talk/")
                assert response is not None and response.status == 200
                tab.page.wait_for_load_state("networkidle")
                section = tab.page.locator("section.conversation")
                text = section.inner_text()
                assert "3 replies" in text and "25 likes" in text and "1 boost" in text
                assert "Ann Lee" in text and "@ann@m.example" in text
                assert "and 5 more" in text
                # the reply behind its content warning is folded
                assert not tab.page.locator("details.reply-cw").first.evaluate("d => d.open")
                # styled by the theme: a card, a round avatar, initials for the others
                styles = tab.page.evaluate(
                    """() => {
                      const body = getComputedStyle(document.querySelector('.reply-body'));
                      const avatar = document.querySelector('.conversation img.avatar');
                      const initials = getComputedStyle(
                        document.querySelector('.conversation .avatar.initials'));
                      return {radius: body.borderRadius, background: body.backgroundColor,
                              avatar: avatar && avatar.naturalWidth,
                              round: getComputedStyle(avatar).borderRadius,
                              initials: initials.display};
                    }"""
                )
                assert styles["radius"] != "0px" and styles["background"] != "rgba(0, 0, 0, 0)", (
                    styles
                )
                assert styles["avatar"] == 1 and styles["round"] == "50%", styles
                assert styles["initials"] in ("flex", "inline-flex"), styles  # flex in a row
                # compact like the follow box: the address and its copy button on one line,
                # the form one click away behind "How to reply"
                address = tab.page.locator(".join .object-id").bounding_box()
                copy = tab.page.locator("[data-copy-object]").bounding_box()
                assert address and copy and abs(address["y"] - copy["y"]) < address["height"]
                assert not tab.page.locator("form.join-form").is_visible()
                tab.page.locator(".join-more > summary").click()
                # the script: the form shows, and the reply newer than the page appears as text
                assert tab.page.locator("form.join-form").is_visible()
                tab.page.wait_for_selector("[data-new-replies]:not([hidden])")
                newer = tab.page.locator("[data-new-replies]").inner_text()
                assert "A late word" in newer and "after the build." in newer
                assert tab.page.locator("[data-new-replies] script").count() == 0
                tab.page.screenshot(
                    path=SCREENSHOTS / f"conversation-{device}-{scheme}.png", full_page=True
                )
                assert tab.errors == []
                # no request leaves the site's origin
                assert requests and all(r.startswith(origin + "/") for r in requests), requests
            finally:
                tab.close()
