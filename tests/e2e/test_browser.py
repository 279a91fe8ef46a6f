"""`fedipress serve` in a real browser: Debian's Chromium, headless, through Playwright.

Checks that the theme's styles apply with no console errors, saves screenshots (light and
dark) to test-output/screenshots/, and watches the tab reload after an edit.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"  # Debian's package: nothing is downloaded at install time
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
TIMEOUT = 10.0

POST = """\
---
title: A post with code
date: 2024-05-01
tags: [python, notes]
description: Code, a quote and a list.
---

The original paragraph of this post.

<!-- more -->

```python
def greet(name: str) -> str:
    return f"Hello, {name}!"
```

> A quotation, set apart.

- one
- two
"""
LONG = """\
---
title: A long read
date: 2024-03-01
toc: true
---

Why this post has a table of contents.

## Getting started

Some text.

### The first step

More text.

## Going further

The end.
"""
# The avatar: a 1x1 PNG, enough for the header to show the configured image.
AVATAR = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f80f0000010101005e0f4bb70000000049454e44ae426082"
)
SITE = {
    "fedipress.yaml": (
        "title: Browser Test\nbase_url: https://blog.example/\n"
        "description: A blog seen through Chromium.\nauthor:\n  name: Ada\n"
        "fediverse:\n  username: ada\n  avatar: /avatar.png\n"
        "  fields:\n    - {name: Code, value: https://codeberg.org/ada}\n"
        "    - {name: Mastodon, value: https://social.example/@ada}\n"
    ),
    "content/posts/code.md": POST,
    "content/posts/long.md": LONG,
    "content/posts/older.md": "---\ntitle: An older post\ndate: 2024-01-02\n---\nOlder.\n",
    "content/pages/about.md": "---\ntitle: About\n---\nAbout this blog.\n",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    for name, text in SITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "static").mkdir()
    (root / "static" / "avatar.png").write_bytes(AVATAR)
    return root


@pytest.fixture
def url(site: Path) -> Iterator[str]:
    """`fedipress serve` on a free port; stopped with Ctrl-C (SIGINT), killed if need be.
    Its stderr goes to serve.log beside the site, for when a test fails."""
    with (site.parent / "serve.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fedipress", "serve", ".", "--port", "0"],
            cwd=site,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + TIMEOUT
        for line in proc.stdout:  # the build summary comes first, then the address
            if found := re.match(r"serving (http://\S+)$", line.strip()):
                yield found.group(1)
                break
            assert time.monotonic() < deadline, "fedipress serve did not start"
        else:
            pytest.fail("fedipress serve exited before serving")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """A page that records console errors and uncaught exceptions."""

    def __init__(
        self,
        browser: Browser,
        color_scheme: str = "light",
        viewport: tuple[int, int] = (1024, 800),
        origin: str = "",
    ) -> None:
        self.context = browser.new_context(
            color_scheme=color_scheme,  # type: ignore[arg-type]
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        if origin:  # 127.0.0.1 is a secure context: the clipboard API is there
            self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
        self.outside: list[str] = []
        self.context.route("**/*", self._only_local)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT * 1000)
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _only_local(self, route: Route) -> None:
        """The theme makes no external requests: any is recorded and answered here."""
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} at {message.location}")

    def close(self) -> None:
        self.context.close()


def _styles(page: Page) -> dict[str, object]:
    return page.evaluate(
        """() => {
          const sheet = [...document.styleSheets].find(
            (s) => s.href && s.href.endsWith("/css/style.css"));
          const body = getComputedStyle(document.body);
          return {
            rules: sheet ? sheet.cssRules.length : 0,
            background: body.backgroundColor,
          };
        }"""
    )


def test_browser__home_and_post_render_with_the_theme(browser: Browser, url: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    backgrounds: dict[str, set[object]] = {}
    for scheme in ("light", "dark"):
        tab = Tab(browser, scheme)
        try:
            for name, path, heading in (
                ("home", "", "A post with code"),
                ("post", "posts/code/", "A post with code"),
            ):
                response = tab.page.goto(url + path)
                assert response is not None and response.status == 200
                tab.page.wait_for_load_state("load")
                assert heading in tab.page.inner_text("main")
                styles = _styles(tab.page)
                assert isinstance(styles["rules"], int) and styles["rules"] > 0, styles
                # Without the theme the body would be transparent.
                assert styles["background"] != "rgba(0, 0, 0, 0)", styles
                backgrounds.setdefault(scheme, set()).add(styles["background"])
                tab.page.screenshot(path=SCREENSHOTS / f"{name}-{scheme}.png", full_page=True)
            assert tab.errors == []
        finally:
            tab.close()
    assert backgrounds["light"].isdisjoint(backgrounds["dark"]), backgrounds


def test_browser__tab_reloads_after_an_edit_and_shows_errors(
    browser: Browser, url: str, site: Path
) -> None:
    post = site / "content" / "posts" / "code.md"
    tab = Tab(browser)
    try:
        page = tab.page
        page.goto(url + "posts/code/")
        assert "The original paragraph" in page.inner_text("main")
        page.evaluate("window.__notReloaded = true")

        # A broken post: the open tab shows the error over the page.
        post.write_text(POST.replace("title: A post with code", "title: [broken"))
        overlay = page.wait_for_selector("#fedipress-error-overlay")
        assert overlay is not None
        assert re.search(r"content/posts/code\.md:\d+:\d+: ", overlay.inner_text())
        assert page.evaluate("window.__notReloaded") is True
        page.screenshot(path=SCREENSHOTS / "error-overlay.png")

        # Fixed and edited: the tab reloads by itself and shows the new text.
        post.write_text(POST.replace("The original paragraph", "The edited paragraph"))
        page.wait_for_function(
            "() => document.querySelector('main').innerText.includes('The edited paragraph')"
        )
        assert page.evaluate("window.__notReloaded") is None  # a real reload, not a patch
        assert page.query_selector("#fedipress-error-overlay") is None
        assert tab.errors == []
    finally:
        tab.close()


def _background(page: Page) -> str:
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def test_browser__the_theme_switch_remembers_the_choice(browser: Browser, url: str) -> None:
    # Given a reader whose system is light
    tab = Tab(browser, "light")
    try:
        page = tab.page
        page.goto(url + "posts/code/")
        light = _background(page)
        toggle = page.locator("[data-theme-toggle]")
        assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "false"
        # When they switch to dark
        toggle.click()
        dark = _background(page)
        assert dark != light and toggle.get_attribute("aria-pressed") == "true"
        # Then the choice holds on the next page and after a reload, code colours included
        page.goto(url)
        assert _background(page) == dark
        page.reload()
        assert _background(page) == dark
        page.screenshot(path=SCREENSHOTS / "home-switched-dark.png", full_page=True)
        # And switching back follows the light system again
        page.locator("[data-theme-toggle]").click()
        assert _background(page) == light
        page.reload()
        assert _background(page) == light
        assert tab.errors == [] and tab.outside == []
    finally:
        tab.close()
    # A dark system with a light choice stays light
    dark_tab = Tab(browser, "dark")
    try:
        page = dark_tab.page
        page.goto(url)
        dark = _background(page)
        page.locator("[data-theme-toggle]").click()
        page.reload()
        assert _background(page) != dark
        assert page.locator("[data-theme-toggle]").get_attribute("aria-pressed") == "false"
    finally:
        dark_tab.close()


def test_browser__code_blocks_have_a_copy_button(browser: Browser, url: str) -> None:
    tab = Tab(browser, origin=url.rstrip("/"))
    try:
        page = tab.page
        page.goto(url + "posts/code/")
        button = page.locator(".code-block .copy-code")
        assert button.count() == 1 and button.is_visible()
        assert button.get_attribute("aria-label") == "Copy the code"
        button.click()
        page.wait_for_function("document.querySelector('.copy-code').textContent === 'Copied'")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == 'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n'
        page.locator(".code-block").screenshot(path=SCREENSHOTS / "code-copy.png")
        assert tab.errors == [] and tab.outside == []
    finally:
        tab.close()


def test_browser__table_of_contents_links_to_the_headings(browser: Browser, url: str) -> None:
    tab = Tab(browser)
    try:
        page = tab.page
        page.goto(url + "posts/long/")
        toc = page.locator("nav.toc")
        assert toc.is_visible()
        assert toc.locator("a").all_inner_texts() == [
            "Getting started",
            "The first step",
            "Going further",
        ]
        toc.locator("a", has_text="Going further").click()
        assert page.url.endswith("#going-further")
        toc.screenshot(path=SCREENSHOTS / "toc.png")
        assert tab.errors == []
    finally:
        tab.close()


@pytest.mark.parametrize(("name", "viewport"), [("desktop", (1024, 800)), ("mobile", (375, 740))])
def test_browser__the_follow_box_is_compact(
    browser: Browser, url: str, name: str, viewport: tuple[int, int]
) -> None:
    tab = Tab(browser, viewport=viewport)
    try:
        page = tab.page
        for path in ("tags/", "404.html"):
            page.goto(url + path)
            box = page.locator("section.follow").bounding_box()
            main = page.locator("main").bounding_box()
            assert box is not None and main is not None
            # Shorter than the content of the smallest pages it sits under
            assert box["height"] < main["height"], (path, box, main)
        page.screenshot(path=SCREENSHOTS / f"follow-{name}.png", full_page=True)
        # The handle and its copy button share one line
        handle = page.locator(".follow .handle").bounding_box()
        copy = page.locator("[data-copy-handle]").bounding_box()
        assert handle and copy and abs(handle["y"] - copy["y"]) < handle["height"]
        # The server form is one click away
        assert not page.locator(".follow-form").is_visible()
        page.locator(".follow-more > summary").click()
        assert page.locator(".follow-form").is_visible()
        page.locator("section.follow").screenshot(path=SCREENSHOTS / f"follow-open-{name}.png")
        # The "Elsewhere" links line up: side by side on one baseline, or, wrapped on a
        # narrow screen, each new line starting at the list's left edge
        items = [b for b in (li.bounding_box() for li in page.locator(".elsewhere li").all()) if b]
        listed = page.locator(".elsewhere").bounding_box()
        assert len(items) == 2 and listed is not None
        for before, item in itertools.pairwise(items):
            same_row = abs(item["y"] - before["y"]) < 2
            assert same_row or abs(item["x"] - listed["x"]) < 1, (before, item, listed)
        # and the configured avatar is in the header
        avatar = page.locator(".site-title .avatar")
        assert avatar.is_visible()
        assert page.evaluate("document.querySelector('.site-title .avatar').naturalWidth") == 1
        assert tab.errors == [] and tab.outside == []
    finally:
        tab.close()
