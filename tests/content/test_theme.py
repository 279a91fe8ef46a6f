"""The default theme: colour contrast, the syntax CSS script, the follow box (rendered and in
a real browser on 127.0.0.1), and the docs that describe the template contract."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from fedipress import config as config_module
from fedipress.config import Author, Config, FediverseConfig, MenuItem
from fedipress.content import site as site_module
from fedipress.content.pages import Alternate, PageInfo, SiteInfo, TopicInfo
from fedipress.content.theme import load_theme, make_environment, render_template
from fedipress.documents.conversation import Conversation, Person, Reply
from fedipress.documents.post import Post, Tag

ROOT = Path(__file__).resolve().parents[2]
THEME = ROOT / "themes" / "default"
STYLE = THEME / "static" / "css" / "style.css"
SYNTAX = THEME / "static" / "css" / "syntax.css"
ACTOR = "https://blog.example/ap/actor"
HANDLE = "@blog@blog.example"


# --- colours -----------------------------------------------------------------------------


def _luminance(color: str) -> float:
    value = color.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast__known_values() -> None:
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def _custom_properties(block: str) -> dict[str, str]:
    return dict(re.findall(r"--([\w-]+)\s*:\s*(#[0-9a-fA-F]{3,6})\b", block))


def _schemes(css: str) -> dict[str, dict[str, str]]:
    """The colour custom properties of `:root`, and of `:root` inside the dark media query."""
    dark_at = css.index("@media (prefers-color-scheme: dark)")
    light = re.search(r":root\s*\{([^}]*)\}", css)
    dark = re.search(r":root\s*\{([^}]*)\}", css[dark_at:])
    assert light and dark and light.start() < dark_at
    return {"light": _custom_properties(light.group(1)), "dark": _custom_properties(dark.group(1))}


SCHEMES = _schemes(STYLE.read_text())
TEXT_PAIRS = [
    (fg, bg)
    for bg in ("bg", "surface", "code-bg")
    for fg in ("fg", "muted", "accent", "accent-hover")
] + [("bg", "accent"), ("bg", "accent-hover"), ("bg", "fg"), ("fg", "mark")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("fg", "bg"), TEXT_PAIRS)
def test_style__text_contrast_is_aa(scheme: str, fg: str, bg: str) -> None:
    colors = SCHEMES[scheme]
    assert contrast(colors[fg], colors[bg]) >= 4.5, (scheme, fg, bg)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_style__focus_ring_is_visible(scheme: str) -> None:
    colors = SCHEMES[scheme]
    # WCAG 1.4.11: non-text contrast of at least 3:1 against what surrounds it.
    for bg in ("bg", "surface"):
        assert contrast(colors["focus"], colors[bg]) >= 3.0, (scheme, bg)


def test_style__dark_scheme_overrides_every_colour() -> None:
    assert set(SCHEMES["dark"]) == set(SCHEMES["light"])
    assert all(SCHEMES["dark"][k] != v for k, v in SCHEMES["light"].items())


def test_style__no_external_requests() -> None:
    for path in (THEME / "static").rglob("*.css"):
        css = path.read_text()
        assert "@import" not in css, path
        assert "@font-face" not in css, path
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", css), path


# --- syntax.css --------------------------------------------------------------------------


def test_syntax_css__regenerating_changes_nothing(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "syntax-css"
    assert os.access(script, os.X_OK)
    out = tmp_path / "syntax.css"
    for _ in range(2):
        subprocess.run([sys.executable, script, "--output", out], check=True, timeout=30)
        assert out.read_text() == SYNTAX.read_text()
    check = subprocess.run([sys.executable, script, "--check"], timeout=30)
    assert check.returncode == 0


def test_syntax_css__check_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "syntax.css"
    stale.write_text("/* old */\n")
    script = ROOT / "scripts" / "syntax-css"
    result = subprocess.run(
        [sys.executable, script, "--check", "--output", stale],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "out of date" in result.stderr
    assert stale.read_text() == "/* old */\n"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_syntax_css__token_colours_are_aa(scheme: str) -> None:
    css = SYNTAX.read_text()
    light, _, dark = css.partition("@media (prefers-color-scheme: dark)")
    part = light if scheme == "light" else dark
    colors = re.findall(r"color:\s*(#[0-9a-f]{6})", part)
    assert len(colors) > 20
    background = SCHEMES[scheme]["code-bg"]
    for color in colors:
        assert contrast(color, background) >= 4.5, (scheme, color)


# --- the follow box ------------------------------------------------------------------------


def _site_info(config: Config, handle: str, actor_url: str) -> SiteInfo:
    return SiteInfo(
        title=config.title,
        description="A test blog.",
        language="en",
        base_url=config.base_url,
        author=Author("Ada"),
        menu=(MenuItem("About", "/about/"),),
        params={},
        fediverse=config.fediverse,
        handle=handle,
        actor_url=actor_url,
        pages=(),
    )


def _render(tmp_path: Path, template: str, handle: str = HANDLE) -> str:
    fediverse = FediverseConfig("blog") if handle else None
    config = Config.for_test(fediverse=fediverse)
    env = make_environment(load_theme(tmp_path, config), config)
    page = PageInfo("404", "/404.html", "Page not found", ACTOR, "", noindex=True)
    site = _site_info(config, handle, ACTOR if handle else "")
    return render_template(env, template, {"site": site, "config": config, "page": page})


def test_follow__shows_handle_and_works_without_scripts(tmp_path: Path) -> None:
    html = _render(tmp_path, "partials/follow.html")
    assert f'<code class="handle">{HANDLE}</code>' in html
    assert f'data-actor="{ACTOR}"' in html
    # Without JavaScript: the button and form stay hidden, the instructions and link show.
    assert re.search(r"<button[^>]*data-copy-handle[^>]*\bhidden\b", html)
    assert re.search(r'<form class="follow-form" hidden>', html)
    assert "Search for this handle in your app" in html
    assert f'<a href="{ACTOR}" rel="me">{ACTOR}</a>' in html


def test_follow__has_no_inline_code(tmp_path: Path) -> None:
    html = _render(tmp_path, "404.html")
    assert '<script src="/js/follow.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\son\w+=", html)
    assert " style=" not in html


def test_follow__absent_when_site_is_not_a_fediverse_account(tmp_path: Path) -> None:
    html = _render(tmp_path, "404.html", handle="")
    assert "data-follow" not in html
    assert "follow.js" not in html
    assert html.count("<h1") == 1


def test_follow__label_and_ids_are_wired(tmp_path: Path) -> None:
    html = _render(tmp_path, "partials/follow.html")
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'(?:for|aria-labelledby|aria-describedby)="([^"]+)"', html):
        assert ref in ids


def test_templates__every_template_renders_for_a_blank_site(tmp_path: Path) -> None:
    """StrictUndefined: each template must only use what docs/themes.md promises."""
    config = Config.for_test()
    env = make_environment(load_theme(tmp_path, config), config)
    site = _site_info(config, "", "")
    page = PageInfo("home", "/", "", "https://blog.example/", "", alternates=())
    paginator = site_module.Paginator(1, 1, (), "/")
    tag = Tag("Python", "python")
    post = Post(
        "post", "content/posts/a.md", "A", "a", "/posts/a/", "a", None, None, (tag,), "", "", ""
    )
    common = {"site": site, "config": config, "page": page}
    contexts: dict[str, dict[str, Any]] = {
        "index.html": {"paginator": paginator, "posts": ()},
        "tag.html": {"paginator": paginator, "posts": (), "tag": tag},
        "tags.html": {"tags": ()},
        "archive.html": {"years": (), "year": None},
        "post.html": {"post": post, "newer": None, "older": None},
        "page.html": {"post": dataclasses.replace(post, kind="page")},
        "404.html": {},
    }
    for name, extra in contexts.items():
        html = render_template(env, name, common | extra)
        assert html.count("<h1") == 1, name
        assert '<html lang="en">' in html, name


def test_post_template__warning_gallery_and_cover_paths(tmp_path: Path) -> None:
    config = Config.for_test(base_url="https://example.org/blog/")
    env = make_environment(load_theme(tmp_path, config), config)
    post = Post(
        "post",
        "content/posts/a/index.md",
        "A",
        "a",
        "/posts/a/",
        "a",
        None,
        None,
        (),
        "",
        "",
        "<p>Spoiler text</p>",
        image="cover.png",
        image_alt="A lake",
        content_warning="ending of a novel",
        images=(("one.png", "First"), ("/img/two.png", "")),
    )
    page = PageInfo("post", post.url, "A", "https://example.org/blog/posts/a/", "")
    context = {"site": _site_info(config, "", ""), "config": config, "page": page}
    html = render_template(env, "post.html", context | {"post": post, "newer": None, "older": None})
    assert re.search(
        r"<details class=\"cw\">\s*<summary>Content warning: ending of a novel</summary>"
        r"\s*<div class=\"content e-content\">\s*<p>Spoiler text</p>",
        html,
    )
    # Bundle files stay relative to the post; site paths get the base_url path.
    assert '<img class="u-photo" src="cover.png" alt="A lake">' in html
    assert 'src="one.png" alt="First"' in html
    assert 'src="/blog/img/two.png" alt=""' in html


# --- the follow box in a browser ---------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A folder with a page that has the follow box, one without it, and the theme's files,
    served on 127.0.0.1 (a secure context, so the clipboard API is available)."""
    root = tmp_path / "www"
    shutil.copytree(THEME / "static", root)
    (root / "with.html").write_text(_render(tmp_path, "404.html"))
    (root / "without.html").write_text(
        "<!doctype html><html lang=en><title>x</title>"
        '<script src="/js/follow.js" defer></script><h1>No follow box</h1></html>'
    )
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking", "--disable-quic"],
        )
        yield launched
        launched.close()


def _open(browser: Any, base: str, path: str, **options: Any) -> tuple[Any, list[str], list[str]]:
    """A page that may only talk to `base`; anything else is answered locally and recorded."""
    context = browser.new_context(**options)
    errors: list[str] = []
    elsewhere: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(base):
            request_route.continue_()
        else:
            elsewhere.append(url)
            request_route.fulfill(status=200, content_type="text/html", body="<p>stub</p>")

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(base + path)
    page.wait_for_load_state("load")
    return page, errors, elsewhere


@pytest.mark.browser
def test_follow_js__sends_reader_to_their_server(browser: Any, served: str) -> None:
    page, errors, elsewhere = _open(browser, served, "/with.html")
    # The form is one click away, behind "How to follow".
    assert not page.is_visible("#follow-server")
    page.click(".follow-more > summary")
    # Given a value that is not a server name, the form explains and stays on the page.
    page.fill("#follow-server", "not a server")
    page.click(".follow-form button[type=submit]")
    assert page.get_attribute("#follow-server", "aria-invalid") == "true"
    assert "mastodon.social" in page.inner_text("#follow-error")
    assert page.url.endswith("/with.html") and elsewhere == []
    # A handle with odd case and spaces still names the server.
    page.fill("#follow-server", "  @me@Mastodon.Social ")
    page.click(".follow-form button[type=submit]")
    page.wait_for_url("https://mastodon.social/**")
    assert elsewhere == [
        "https://mastodon.social/authorize_interaction?uri=https%3A%2F%2Fblog.example%2Fap%2Factor"
    ]
    assert errors == []
    page.context.close()


@pytest.mark.browser
def test_follow_js__copies_the_handle(browser: Any, served: str) -> None:
    page, errors, _ = _open(browser, served, "/with.html")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served)
    assert page.is_visible("[data-copy-handle]")
    page.click("[data-copy-handle]")
    page.wait_for_function("document.querySelector('.copy-status').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == HANDLE
    assert errors == []
    page.context.close()


@pytest.mark.browser
def test_follow_js__harmless_on_a_page_without_the_box(browser: Any, served: str) -> None:
    page, errors, elsewhere = _open(browser, served, "/without.html")
    assert page.evaluate("document.readyState") == "complete"
    assert errors == [] and elsewhere == []
    page.context.close()


@pytest.mark.browser
def test_follow_js__scripts_off_leaves_instructions(browser: Any, served: str) -> None:
    page, _, _ = _open(browser, served, "/with.html", java_script_enabled=False)
    assert not page.is_visible(".follow-form")
    assert not page.is_visible("[data-copy-handle]")
    assert page.is_visible(".handle")
    page.click(".follow-more > summary")  # <details> opens without a script
    assert page.is_visible(f'a[href="{ACTOR}"]') and not page.is_visible(".follow-form")
    page.context.close()


# --- docs --------------------------------------------------------------------------------


def _documented(doc: str, classes: list[type]) -> list[str]:
    text = (ROOT / "docs" / doc).read_text()
    return [
        f"{cls.__name__}.{f.name}"
        for cls in classes
        for f in dataclasses.fields(cls)
        if f"`{f.name}`" not in text
    ]


def test_docs__config_md_names_every_config_field() -> None:
    classes = [
        obj
        for obj in vars(config_module).values()
        if dataclasses.is_dataclass(obj) and obj.__module__ == config_module.__name__
    ]
    assert Config in classes and FediverseConfig in classes
    assert _documented("config.md", classes) == []  # type: ignore[arg-type]


def test_docs__themes_md_names_every_context_field() -> None:
    classes = [
        SiteInfo,
        TopicInfo,
        PageInfo,
        Alternate,
        Post,
        Tag,
        site_module.Paginator,
        site_module.TagGroup,
        site_module.YearGroup,
        Author,
        MenuItem,
        Conversation,
        Reply,
        Person,
    ]
    assert _documented("themes.md", classes) == []
    text = (ROOT / "docs" / "themes.md").read_text()
    for template in ("index.html", "post.html", "page.html", "tag.html", "tags.html"):
        assert f"`{template}`" in text
    for name in ("url", "absolute_url", "date", "isoformat", "StrictUndefined"):
        assert f"`{name}`" in text
