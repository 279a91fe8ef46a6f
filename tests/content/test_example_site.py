"""Build example-site/ with the default theme and check the HTML a reader and a browser get."""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from fedipress import app
from fedipress.app.build import BuildOptions

EXAMPLE = Path(__file__).resolve().parents[2] / "example-site"
BASE_URL = "https://blog.example/"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
DRAFT = "2025/04/knife-skills/index.html"
FUTURE = "2099/01/letter-to-2099/index.html"


class Page(HTMLParser):
    """The parts of an HTML page these tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts = 0
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def find(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]

    def resources(self) -> list[str]:
        """URLs the browser fetches on its own: stylesheets, icons, scripts, images, media."""
        fetched = {"stylesheet", "icon", "preload", "modulepreload", "manifest", "prefetch"}
        fetched |= {"preconnect", "dns-prefetch", "apple-touch-icon"}
        urls = [
            a["href"] or ""
            for a in self.find("link")
            if fetched & set((a.get("rel") or "").split())
        ]
        for tag in ("script", "img", "source", "iframe", "video", "audio", "embed", "track"):
            urls += [a["src"] or "" for a in self.find(tag) if a.get("src")]
        urls += [a["data"] or "" for a in self.find("object") if a.get("data")]
        urls += [a["poster"] or "" for a in self.find("video") if a.get("poster")]
        for img in self.find("img"):
            urls += [
                part.split()[0] for part in (img.get("srcset") or "").split(",") if part.strip()
            ]
        return urls


def _copy_site(tmp: Path) -> Path:
    # Build a copy so the build cache and output never land in the repository.
    site = tmp / "example-site"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns("_site", ".fedipress"))
    return site


def _pages(out: Path) -> Iterator[tuple[str, Page]]:
    for path in sorted(out.rglob("*.html")):
        rel = path.relative_to(out).as_posix()
        yield rel, Page(path.read_text(encoding="utf-8"))


def _url_of(rel: str) -> str:
    """The URL a built file is served at: 'a/b/index.html' -> https://blog.example/a/b/."""
    return urljoin(BASE_URL, rel.removesuffix("index.html"))


def _local_file(out: Path, url: str) -> Path:
    path = urlsplit(url).path.lstrip("/")
    return out / (path + "index.html" if path.endswith("/") or not path else path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, app.BuildResult]:
    tmp = tmp_path_factory.mktemp("example")
    site = _copy_site(tmp)
    out = tmp / "public"
    result = app.build(site, BuildOptions(output=out, strict=True, now=lambda: NOW, jobs=1))
    return out, result


@pytest.fixture(scope="module")
def out(built: tuple[Path, app.BuildResult]) -> Path:
    return built[0]


def test_build__example_site_is_strict_clean(built: tuple[Path, app.BuildResult]) -> None:
    _out, result = built
    assert result.warnings == ()
    assert len(result.site.posts) >= 10
    assert [p.title for p in result.site.pages] == ["About"]


def test_check__example_site_passes_strict(tmp_path: Path) -> None:
    site = _copy_site(tmp_path)
    result = app.check(site, BuildOptions(strict=True, now=lambda: NOW, jobs=1))
    assert result.output_dir is None
    assert not (site / "_site").exists()


def test_html__every_page_has_lang_one_h1_and_skip_target(out: Path) -> None:
    pages = list(_pages(out))
    assert len(pages) > 30
    for rel, page in pages:
        (html,) = page.find("html")
        assert html.get("lang") == "en", rel
        assert len(page.find("h1")) == 1, rel
        skip = page.find("a")[0]  # the first link on the page, so keyboard users meet it first
        target = (skip.get("href") or "").removeprefix("#")
        assert target and skip.get("href") == f"#{target}", rel
        assert any(attrs.get("id") == target for _tag, attrs in page.tags), rel
        assert page.find("main") and page.find("nav") and page.find("footer"), rel


def test_html__no_external_resources(out: Path) -> None:
    """No third-party request by default: no page of the example site makes the browser
    fetch anything from another site (scripts, styles, images, fonts, frames, media)."""
    for rel, page in _pages(out):
        for url in page.resources():
            assert not urlsplit(url).scheme and not url.startswith("//"), (rel, url)


def test_css__no_external_fonts_or_imports(out: Path) -> None:
    """Stylesheets fetch nothing from elsewhere either: no web fonts, no @import."""
    sheets = sorted(out.rglob("*.css"))
    assert sheets
    for sheet in sheets:
        text = sheet.read_text(encoding="utf-8")
        for target in re.findall(r"url\(\s*['\"]?([^'\")]+)", text):
            assert not urlsplit(target).scheme.startswith("http"), (sheet.name, target)
            assert not target.startswith("//"), (sheet.name, target)
        assert "@import" not in text, sheet.name


def test_html__images_have_alt_and_exist(out: Path) -> None:
    seen = 0
    for rel, page in _pages(out):
        for img in page.find("img"):
            assert img.get("alt") is not None, (rel, img)
            target = _local_file(out, urljoin(_url_of(rel), img["src"] or ""))
            assert target.is_file(), (rel, img["src"])
            seen += 1
    assert seen >= 4


def test_html__internal_links_resolve(out: Path) -> None:
    for rel, page in _pages(out):
        for attrs in page.find("a") + page.find("link"):
            href = attrs.get("href") or ""
            url = urljoin(_url_of(rel), href)
            if not url.startswith(BASE_URL) or href.startswith("#"):
                continue
            assert _local_file(out, url).is_file(), (rel, href)


def test_html__strict_csp_possible(out: Path) -> None:
    """No inline scripts, event handlers or style attributes, so `script-src 'self'` and
    `style-src 'self'` work."""
    for rel, page in _pages(out):
        assert page.inline_scripts == 0, rel
        for tag, attrs in page.tags:
            assert "style" not in attrs, (rel, tag)
            assert not [a for a in attrs if a.startswith("on")], (rel, tag)


def test_build__draft_and_future_left_out_by_default(out: Path) -> None:
    assert not (out / DRAFT).exists()
    assert not (out / FUTURE).exists()
    listed = (out / "archive/index.html").read_text() + (out / "feed.xml").read_text()
    assert "knife-skills" not in listed
    assert "letter-to-2099" not in listed


def test_build__drafts_and_future_included_on_request(tmp_path: Path) -> None:
    site = _copy_site(tmp_path)
    out = tmp_path / "public"
    options = BuildOptions(output=out, drafts=True, future=True, now=lambda: NOW, jobs=1)
    app.build(site, options)
    assert "Knife skills" in (out / DRAFT).read_text()
    assert "whoever reads this in 2099" in (out / FUTURE).read_text()


def test_build__page_bundle_images_copied_beside_post(out: Path) -> None:
    bundle = EXAMPLE / "content/posts/2024-03-10-liepnitzsee-loop"
    post = out / "2024/03/liepnitzsee-loop"
    for name in ("cover.png", "route.png"):
        assert (post / name).read_bytes() == (bundle / name).read_bytes()
    page = Page((post / "index.html").read_text())
    shown = {img["src"] for img in page.find("img") if "avatar" not in img.get("class", "")}
    assert shown == {"cover.png", "route.png"}
    (og_image,) = [m for m in page.find("meta") if m.get("property") == "og:image"]
    assert og_image["content"] == "https://blog.example/2024/03/liepnitzsee-loop/cover.png"


def test_build__md_links_become_permalinks(out: Path) -> None:
    text = (out / "2024/02/bakers-percentages/index.html").read_text()
    assert 'href="/2024/01/sourdough-starter/#feeding-ratios"' in text
    assert 'href="/2024/07/recipes-in-sqlite/"' in text
    about = (out / "about/index.html").read_text()
    assert 'href="/2024/10/a-folder-of-markdown/"' in about
    for _rel, page in _pages(out):
        assert not [a for a in page.find("a") if (a.get("href") or "").endswith(".md")]


def test_example_site__shows_every_markdown_feature(out: Path) -> None:
    html = "\n".join(p.read_text() for p in out.rglob("*.html"))
    for marker in (
        "<table>",
        'class="footnote-ref"',
        'class="task-list-item',
        "<s>",
        'id="feeding-ratios"',
        'href="#text-files-last"',
        "<blockquote>",
        'class="cover"',
        'class="gallery"',
        'rel="next"',
    ):
        assert marker in html, marker
    for lang in ("python", "rust", "sql", "bash", "xml", "yaml", "js", "diff", "console"):
        assert f'data-lang="{lang}"' in html, lang
    assert (out / "page/2/index.html").is_file()
    summary = (out / "index.html").read_text()
    assert "<!-- more -->" not in summary
    assert "The routine" not in summary  # the starter post's summary stops at the marker


def _png_pixels(data: bytes) -> tuple[int, int, int]:
    """Check a PNG's chunk CRCs and decompress it; return width, height and the row bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height = struct.unpack(">II", header[:8])
    return width, height, len(zlib.decompress(idat))


def test_example_site__images_are_valid_pngs() -> None:
    images = sorted((EXAMPLE / "content").rglob("*.png"))
    assert len(images) >= 3
    for path in images:
        width, height, size = _png_pixels(path.read_bytes())
        assert width >= 320 and height >= 200, path
        assert size == height * (1 + width * 3), path  # RGB, one filter byte per row
        assert path.stat().st_size < 60_000, path
