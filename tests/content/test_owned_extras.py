"""What the default theme adds for `analytics:` and `matrix:`: the Matomo snippet on every
page only when configured, with the right site id and settings and no inline code; the
author's Matrix address and room as matrix.to links in the follow box and on the author's
page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fedipress import app
from fedipress.app.build import BuildOptions
from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from tests.conftest import write_site
from tests.content.test_example_site import Page

NOW = datetime(2025, 6, 1, tzinfo=UTC)
MATOMO = "https://stats.example.org/matomo/"
SITE = """
-- fedipress.yaml --
title: Owned
base_url: https://blog.example/
author: {{name: Mara, url: https://blog.example/about/}}
{extra}
-- content/posts/hello.md --
---
title: Hello
date: 2025-01-02
---
Hello.
-- content/pages/about.md --
---
title: About
---
About me.
-- content/pages/now.md --
---
title: Now
---
What I do now.
"""


def _build(tmp_path: Path, extra: str) -> dict[str, Page]:
    root = write_site(tmp_path / "site", SITE.format(extra=extra))
    if "fediverse" in extra:
        generate_keys(root, load_config(root))
    out = tmp_path / "out"
    app.build(root, BuildOptions(output=out, strict=True, now=lambda: NOW, jobs=1))
    return {
        path.relative_to(out).as_posix(): Page(path.read_text(encoding="utf-8"))
        for path in sorted(out.rglob("*.html"))
    }


def test_analytics__nothing_without_configuration(tmp_path: Path) -> None:
    pages = _build(tmp_path, "")

    assert len(pages) > 5
    for rel, page in pages.items():
        scripts = [a.get("src") or "" for a in page.find("script")]
        assert not any("matomo" in src for src in scripts), rel
        assert page.find("noscript") == [], rel
        for url in page.resources():
            assert not urlsplit(url).scheme, (rel, url)


def test_analytics__matomo_snippet_on_every_page(tmp_path: Path) -> None:
    pages = _build(tmp_path, f"analytics:\n  matomo: {{url: '{MATOMO}', site_id: 7}}")

    for rel, page in pages.items():
        (script,) = [a for a in page.find("script") if "matomo" in (a.get("src") or "")]
        assert script["src"] == "/js/matomo.js", rel  # the site's own file
        assert script["data-matomo-url"] == MATOMO and script["data-matomo-site"] == "7", rel
        assert page.inline_scripts == 0, rel  # a CSP without 'unsafe-inline' works
        assert all(not key.startswith("on") for _, attrs in page.tags for key in attrs), rel
        (pixel,) = [a for a in page.find("img") if (a.get("src") or "").startswith(MATOMO)]
        target = urlsplit(pixel["src"] or "")
        assert target.path == "/matomo/matomo.php", rel
        query = parse_qs(target.query)
        assert query["idsite"] == ["7"] and query["rec"] == ["1"], rel
        assert pixel["alt"] == "", rel
        # Only the site itself and the author's Matomo are contacted.
        external = {
            f"{urlsplit(u).scheme}://{urlsplit(u).netloc}"
            for u in page.resources()
            if urlsplit(u).scheme
        }
        assert external == {"https://stats.example.org"}, rel


def test_analytics__script_is_in_the_output(tmp_path: Path) -> None:
    _build(tmp_path, f"analytics:\n  matomo: {{url: '{MATOMO}', site_id: 7}}")
    script = (tmp_path / "out" / "js" / "matomo.js").read_text()

    for setting in ("disableCookies", "doNotTrack", "globalPrivacyControl", "data"):
        assert setting in script


def _matrix_links(page: Page) -> list[str]:
    return [
        a.get("href") or ""
        for a in page.find("a")
        if (a.get("href") or "").startswith("https://matrix.to/")
    ]


def test_matrix__address_and_room_in_follow_box_and_author_page(tmp_path: Path) -> None:
    pages = _build(
        tmp_path,
        "fediverse: {username: mara}\n"
        "matrix:\n  homeserver: https://matrix.example.org\n  room: '#blog:example.org'\n"
        "  address: '@mara:example.org'",
    )
    address = "https://matrix.to/#/%40mara%3Aexample.org"
    room = "https://matrix.to/#/%23blog%3Aexample.org"

    # The follow box, in every page's footer.
    assert _matrix_links(pages["index.html"]) == [address, room]
    assert _matrix_links(pages["now/index.html"]) == [address, room]
    # The author's page (author.url) shows them in its article too.
    assert _matrix_links(pages["about/index.html"]) == [address, room, address, room]


def test_matrix__author_page_without_the_follow_box(tmp_path: Path) -> None:
    pages = _build(tmp_path, "matrix: {address: '@mara:example.org'}")

    assert _matrix_links(pages["about/index.html"]) == ["https://matrix.to/#/%40mara%3Aexample.org"]
    assert _matrix_links(pages["now/index.html"]) == []
    assert _matrix_links(pages["index.html"]) == []


def test_matrix__nothing_without_configuration(tmp_path: Path) -> None:
    pages = _build(tmp_path, "fediverse: {username: mara}")

    for rel, page in pages.items():
        assert _matrix_links(page) == [], rel
