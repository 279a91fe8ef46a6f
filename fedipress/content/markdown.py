"""Markdown to HTML: CommonMark plus tables, strikethrough, footnotes, task lists, heading
anchors, and fenced code highlighted by Pygments into CSS classes. Pure: no I/O."""

from __future__ import annotations

import html
import importlib.util
import re
from functools import lru_cache
from typing import Protocol

from markdown_it import MarkdownIt
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from fedipress.documents.post import slugify
from fedipress.errors import ConfigError

# The summary marker as fedipress, Hugo and WordPress write it: `<!-- more -->`, `<!--more-->`.
MORE = re.compile(r"<!--\s*more\s*-->", re.IGNORECASE)
ENGINES = ("auto", "python", "rust")
_FORMATTER = HtmlFormatter(nowrap=True)
_LANG_SAFE = re.compile(r"[^\w+#.-]")
_EXTENSIONS = ["table", "strikethrough"]


class Renderer(Protocol):
    def render(self, src: str) -> str: ...


def resolve_engine(engine: str) -> str:
    """'auto' picks the Rust parser (the `fast` extra) when it is installed."""
    if engine != "auto":
        return engine
    return "rust" if importlib.util.find_spec("markdown_it_pyrs") else "python"


def make_markdown(engine: str = "python") -> Renderer:
    """A Markdown parser. Both engines give the same HTML after `render_markdown`'s shared
    post-processing (tests/content/test_markdown.py compares them on a corpus)."""
    if resolve_engine(engine) == "rust":
        try:
            from markdown_it_pyrs import MarkdownIt as RustMarkdownIt
        except ImportError:
            raise ConfigError(
                "markdown_engine 'rust' needs the markdown-it-pyrs package",
                hint="pip install 'fedipress[fast]', or set markdown_engine: python",
            ) from None
        return _RustRenderer(
            RustMarkdownIt("commonmark").enable_many(
                ["table", "strikethrough", "footnote", "tasklist"]
            )
        )
    return (
        MarkdownIt("commonmark", {"typographer": False})
        .enable(_EXTENSIONS)
        .use(footnote_plugin)
        .use(tasklists_plugin)
    )


_RUST_TASK = re.compile(r'<input class="task-list-item-checkbox" type="checkbox"( checked="")? />')
_RUST_FOOTNOTE = re.compile(r'(<li id="fn\d+" class="footnote-item">)\n')


class _RustRenderer:
    """markdown-it.rs, about 20x faster; its few markup differences are normalised to
    markdown-it-py's."""

    def __init__(self, md: Renderer) -> None:
        self._md = md

    def render(self, src: str) -> str:
        html = self._md.render(src)
        if "task-list-item-checkbox" in html:
            html = _RUST_TASK.sub(
                lambda m: (
                    '<input class="task-list-item-checkbox"'
                    + (' checked="checked"' if m.group(1) else "")
                    + ' disabled="disabled" type="checkbox">'
                ),
                html,
            )
        if "footnote-item" in html:
            html = _RUST_FOOTNOTE.sub(r"\1", html)
        return html


@lru_cache(maxsize=256)
def _lexer(lang: str) -> Lexer | None:
    try:
        return get_lexer_by_name(lang, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


_CODE_BLOCK = re.compile(r'<pre><code(?: class="language-([^"]*)")?>(.*?)</code></pre>', re.DOTALL)
_HEADING = re.compile(r"<h([2-4])>(.*?)</h\1>", re.DOTALL)
_IMG = re.compile(r"<img (?![^>]*\bloading=)")
_ALIGN = re.compile(r' style="text-align:(left|center|right)"')


def _highlight(match: re.Match[str]) -> str:
    lang = _LANG_SAFE.sub("", html.unescape(match.group(1) or "").lower())
    code = match.group(2)
    lexer = _lexer(lang) if lang else None
    body = highlight(html.unescape(code), lexer, _FORMATTER) if lexer else code
    # Quotes need no escaping in element text, and Pygments releases differ on it: write them
    # as they are, so the same site builds to the same bytes whichever Pygments is installed.
    body = body.replace("&quot;", '"').replace("&#39;", "'")
    cls = f' class="language-{lang}"' if lang else ""
    data = f' data-lang="{lang}"' if lang else ""
    return f'<pre class="highlight"{data}><code{cls}>{body}</code></pre>'


def _anchor_headings(content: str) -> str:
    """Give h2-h4 ids from their text ('Über uns' -> 'über-uns'), unique in the document."""
    used: dict[str, int] = {}

    def anchor(match: re.Match[str]) -> str:
        base = slugify(plain_text(match.group(2))) or "section"
        count = used.get(base, 0)
        used[base] = count + 1
        slug = base if count == 0 else f"{base}-{count}"
        return f'<h{match.group(1)} id="{slug}">{match.group(2)}</h{match.group(1)}>'

    return _HEADING.sub(anchor, content)


def render_markdown(md: Renderer, body: str) -> str:
    """Render, then highlight code with Pygments classes, anchor headings, lazy-load images."""
    content = md.render(body)
    if "<pre><code" in content:
        content = _CODE_BLOCK.sub(_highlight, content)
    if "<h" in content:
        content = _anchor_headings(content)
    if ' style="text-align:' in content:
        # Table alignment as classes, so a strict Content-Security-Policy (no inline styles)
        # keeps working; the theme styles .align-left/.align-center/.align-right.
        content = _ALIGN.sub(r' class="align-\1"', content)
    if "<img " in content:
        # Below-the-fold images should not slow the first paint.
        content = _IMG.sub('<img loading="lazy" ', content)
    return content


_FIRST_PARAGRAPH = re.compile(r"<p>.*?</p>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def summarise(content_html: str, summary_text: str = "") -> str:
    """The HTML summary: front matter `summary`, else the part before `<!-- more -->` (or
    `<!--more-->`), else the first paragraph."""
    if summary_text:
        return f"<p>{html.escape(summary_text, quote=False)}</p>"
    marker = MORE.search(content_html)
    if marker:
        return _close_paragraph(content_html[: marker.start()].strip())
    match = _FIRST_PARAGRAPH.search(content_html)
    return match.group(0) if match else ""


def strip_more(content_html: str) -> str:
    """The body without its summary marker: the marker is for fedipress, not for readers,
    feeds or Fediverse servers. A paragraph that held only the marker goes too."""
    if "<!--" not in content_html:
        return content_html
    content_html = _MORE_PARAGRAPH.sub("", content_html)
    return _MORE_LINE.sub("", content_html)


_MORE_PARAGRAPH = re.compile(r"<p>\s*<!--\s*more\s*-->\s*</p>\n?", re.IGNORECASE)
_MORE_LINE = re.compile(r"<!--\s*more\s*-->\n?", re.IGNORECASE)


def _close_paragraph(head: str) -> str:
    """`<p>Intro <!--more-->` cut mid-paragraph: close the paragraph the cut left open."""
    if head.count("<p>") > head.count("</p>"):
        return head + "</p>"
    return head


_TOC_HEADING = re.compile(r'<h([2-4]) id="([^"]*)">(.*?)</h\1>', re.DOTALL)


def table_of_contents(content_html: str) -> tuple[tuple[int, str, str], ...]:
    """(level, anchor, text) of every h2-h4, in order: what a table of contents lists."""
    return tuple(
        (int(level), anchor, plain_text(inner))
        for level, anchor, inner in _TOC_HEADING.findall(content_html)
    )


def plain_text(fragment: str, limit: int = 0) -> str:
    """Strip tags and collapse whitespace; cut at a word boundary when `limit` is set."""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub("", fragment))).strip()
    if limit and len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"
    return text
