"""The Matomo snippet in a real browser (Debian's Chromium, headless): a page view reaches
the author's Matomo, and nothing at all does when the browser says Do Not Track or Global
Privacy Control.

The Matomo here is a collector on 127.0.0.1 that records every request. Its `matomo.js`
stands in for Matomo's tracker (which ships only inside a Matomo install): it runs the
`_paq` commands the page queued and requests `matomo.php` as the real one does, with the
commands it ran, so the test sees how the page configured the tracker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Playwright, sync_playwright

from fedipress import app
from fedipress.app.build import BuildOptions
from tests.conftest import write_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SITE_ID = 3

# Matomo's tracker, reduced to what the page asks of it: run the queued commands, then
# record the page view with an image request to the tracker URL, as piwik.js does.
TRACKER = """
(() => {
  const ran = [];
  let trackerUrl = "", siteId = "", cookies = true;
  const run = (command) => {
    ran.push(command[0]);
    if (command[0] === "setTrackerUrl") trackerUrl = command[1];
    if (command[0] === "setSiteId") siteId = command[1];
    if (command[0] === "disableCookies") cookies = false;
    if (command[0] === "trackPageView") {
      if (cookies) document.cookie = "_pk_id.test=1; path=/";
      const query = new URLSearchParams({
        idsite: siteId, rec: "1", url: location.href, cookie: cookies ? "1" : "0",
        commands: ran.join(","),
      });
      new Image().src = `${trackerUrl}?${query}`;
    }
  };
  (window._paq || []).forEach(run);
  window._paq = { push: run };
})();
"""


class Collector(SimpleHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.requests.append(
            {"path": parts.path, "query": parse_qs(parts.query), "headers": dict(self.headers)}
        )
        if parts.path == "/matomo.js":
            body, kind = TRACKER.encode(), "text/javascript"
        else:
            body, kind = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[list[dict[str, Any]]]:
    requests: list[dict[str, Any]] = []
    handler = type("Handler", (Collector,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    requests.append({"port": server.server_address[1]})  # the first entry: where it listens
    try:
        yield requests
    finally:
        server.shutdown()
        server.server_close()


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = type(
        "Site",
        (SimpleHTTPRequestHandler,),
        {
            "__init__": lambda self, *a, **k: SimpleHTTPRequestHandler.__init__(
                self, *a, directory=str(folder), **k
            ),
            "log_message": lambda self, *a: None,
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture
def site_url(tmp_path: Path, collector: list[dict[str, Any]]) -> Iterator[str]:
    port = collector[0]["port"]
    root = write_site(
        tmp_path / "site",
        f"""
        -- fedipress.yaml --
        title: Counted
        base_url: https://blog.example/
        analytics:
          matomo: {{url: "http://127.0.0.1:{port}/", site_id: {SITE_ID}}}
        -- content/posts/hello.md --
        ---
        title: Hello
        date: 2025-01-02
        ---
        Hello, readers.
        """,
    )
    out = tmp_path / "out"
    now = datetime(2025, 6, 1, tzinfo=UTC)
    app.build(root, BuildOptions(output=out, now=lambda: now, jobs=1))
    server, url = serve(out)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


def _context(playwright: Playwright, tmp_path: Path, **options: Any) -> BrowserContext:
    """A browser profile of its own; `dnt` sets Chromium's own "Send a Do Not Track
    request" preference, `gpc` makes the browser say Global Privacy Control, as Firefox and
    Brave do when it is on (Chromium has no such setting)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    (profile / "Default").mkdir(parents=True)
    prefs = {"enable_do_not_track": bool(options.pop("dnt", False))}
    (profile / "Default" / "Preferences").write_text(json.dumps(prefs))
    gpc = options.pop("gpc", False)
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=ARGS,
        extra_http_headers={"Sec-GPC": "1"} if gpc else {},
        **options,
    )
    if gpc:
        context.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', "
            "{get: () => true, configurable: true});"
        )
    return context


def _visit(context: BrowserContext, url: str, collector: list[dict[str, Any]]) -> list[str]:
    """Open the post, wait until the network is idle; the paths the collector saw."""
    page = context.new_page()
    page.goto(url + "posts/hello/")
    page.wait_for_load_state("networkidle")
    return [r["path"] for r in collector[1:]]


def test_matomo__page_view_recorded_without_cookies(
    playwright: Playwright, tmp_path: Path, site_url: str, collector: list[dict[str, Any]]
) -> None:
    context = _context(playwright, tmp_path)
    try:
        paths = _visit(context, site_url, collector)
        cookies = context.cookies()
    finally:
        context.close()

    assert paths == ["/matomo.js", "/matomo.php"]
    query = collector[2]["query"]
    assert query["idsite"] == [str(SITE_ID)] and query["rec"] == ["1"]
    assert query["url"] == [site_url + "posts/hello/"]
    commands = query["commands"][0].split(",")
    assert commands.index("disableCookies") < commands.index("trackPageView")
    assert "setDoNotTrack" in commands
    assert query["cookie"] == ["0"] and cookies == []


def test_matomo__nothing_sent_with_do_not_track(
    playwright: Playwright, tmp_path: Path, site_url: str, collector: list[dict[str, Any]]
) -> None:
    context = _context(playwright, tmp_path, dnt=True)
    try:
        page = context.new_page()
        page.goto(site_url + "posts/hello/")
        assert page.evaluate("navigator.doNotTrack") == "1"  # the browser says it
        assert _visit(context, site_url, collector) == []
        # The script ran and stopped: it queued nothing either.
        assert page.evaluate("window._paq === undefined")
    finally:
        context.close()


def test_matomo__nothing_sent_with_global_privacy_control(
    playwright: Playwright, tmp_path: Path, site_url: str, collector: list[dict[str, Any]]
) -> None:
    context = _context(playwright, tmp_path, gpc=True)
    try:
        assert _visit(context, site_url, collector) == []
    finally:
        context.close()


def test_matomo__image_counts_readers_without_javascript(
    playwright: Playwright, tmp_path: Path, site_url: str, collector: list[dict[str, Any]]
) -> None:
    context = _context(playwright, tmp_path, java_script_enabled=False)
    try:
        assert _visit(context, site_url, collector) == ["/matomo.php"]
    finally:
        context.close()

    query = collector[1]["query"]
    assert query["idsite"] == [str(SITE_ID)] and query["rec"] == ["1"]
    assert query["url"] == ["https://blog.example/posts/hello/"]
    assert query["action_name"] == ["Hello"]
