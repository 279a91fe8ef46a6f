"""The follow box of topic accounts on their tag pages (FEDERATION.md §13): rendered by the
default theme beside the footer's box, and enhanced by follow.js like it."""

from __future__ import annotations

import functools
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from fedipress import app
from fedipress.app.keyfiles import generate_missing_keys
from fedipress.config import load_config

SITE = """
-- fedipress.yaml --
title: Kitchen
base_url: https://blog.example/
fediverse:
  username: blog
  accounts:
    - username: rust
      display_name: Rust notes
      tags: [rust]
    - username: bread
      tags: [bread, Sourdough]
-- content/posts/crab.md --
---
title: Crab
date: 2025-01-02
tags: [rust, sourdough]
---
Ferris.
-- content/posts/walk.md --
---
title: Walk
date: 2025-01-03
tags: [walks]
---
Outside.
"""
TOPIC = "https://blog.example/ap/topics/rust/actor"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import write_site

    root = tmp_path_factory.mktemp("topics")
    site = write_site(root / "site", SITE)
    generate_missing_keys(site, load_config(site))
    app.build(site, app.BuildOptions(output=root / "out"))
    return root / "out"


def boxes(html: str) -> list[str]:
    return re.findall(r'<section class="follow[^"]*"[^>]*data-actor="([^"]+)"', html)


def test_tag_page__a_follow_box_per_topic_account_that_carries_the_tag(built: Path) -> None:
    rust = (built / "tags" / "rust" / "index.html").read_text()
    sourdough = (built / "tags" / "sourdough" / "index.html").read_text()
    walks = (built / "tags" / "walks" / "index.html").read_text()
    main = "https://blog.example/ap/actor"
    # Each box names its account; the footer's box follows the whole blog
    assert boxes(rust) == [TOPIC, main]
    assert boxes(sourdough) == ["https://blog.example/ap/topics/bread/actor", main]
    assert boxes(walks) == [main]
    assert '<code class="handle">@rust@blog.example</code>' in rust
    assert "Rust notes boosts the posts of Kitchen tagged #rust, and nothing else" in rust
    assert "Follow only #bread, #Sourdough on the Fediverse" in sourdough
    # Ids stay unique on the page
    ids = re.findall(r'\bid="([^"]+)"', rust)
    assert len(ids) == len(set(ids))


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(built: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(built)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.browser
def test_follow_js__enhances_every_box_and_follows_the_topic_account(served: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking", "--disable-quic"],
        )
        try:
            context = browser.new_context()
            elsewhere: list[str] = []
            errors: list[str] = []

            def route(request_route: Any) -> None:
                url = request_route.request.url
                if url.startswith(served):
                    request_route.continue_()
                else:
                    elsewhere.append(url)
                    request_route.fulfill(status=200, content_type="text/html", body="<p>x</p>")

            context.route("**/*", route)
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(served + "/tags/rust/index.html")
            # Both boxes have their form revealed by the script: the topic's at once, the
            # footer's compact box inside its "How to follow"
            assert page.locator(".follow-form:not([hidden])").count() == 2
            assert page.locator(".follow-topic .follow-form:visible").count() == 1
            page.fill("#follow-topic-rust-server", "social.example")
            page.click("#follow-topic-rust-title ~ form button[type=submit]")
            page.wait_for_url("https://social.example/**")
            assert elsewhere == [
                "https://social.example/authorize_interaction?uri="
                "https%3A%2F%2Fblog.example%2Fap%2Ftopics%2Frust%2Factor"
            ]
            assert errors == []
            context.close()
        finally:
            browser.close()
