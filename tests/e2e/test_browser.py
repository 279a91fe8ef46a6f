"""`fedipress serve` in a real browser: Debian's Chromium, headless, through Playwright.

Checks that the theme's styles apply with no console errors, saves screenshots (light and
dark) to test-output/screenshots/, and watches the tab reload after an edit.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

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
SITE = {
    "fedipress.yaml": (
        "title: Browser Test\nbase_url: https://blog.example/\n"
        "description: A blog seen through Chromium.\nauthor:\n  name: Ada\n"
    ),
    "content/posts/code.md": POST,
    "content/posts/older.md": "---\ntitle: An older post\ndate: 2024-01-02\n---\nOlder.\n",
    "content/pages/about.md": "---\ntitle: About\n---\nAbout this blog.\n",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    for name, text in SITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
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

    def __init__(self, browser: Browser, color_scheme: str = "light") -> None:
        self.context = browser.new_context(
            color_scheme=color_scheme,  # type: ignore[arg-type]
            viewport={"width": 1024, "height": 800},
        )
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT * 1000)
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

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
