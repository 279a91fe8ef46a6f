"""Markdown to HTML: CommonMark plus tables, strikethrough, footnotes, task lists, heading
anchors, and fenced code highlighted by Pygments into CSS classes. Pure: no I/O."""

from __future__ import annotations

import html
import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from fedipress.documents.post import slugify

MORE_MARKER = "<!-- more -->"
_FORMATTER = HtmlFormatter(nowrap=True)
_LANG_SAFE = re.compile(r"[^\w+#.-]")


@lru_cache(maxsize=256)
def _lexer(lang: str) -> Lexer | None:
    try:
        return get_lexer_by_name(lang, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def _highlight(code: str, lang: str, _attrs: str) -> str:
    lang = _LANG_SAFE.sub("", lang.lower())
    lexer = _lexer(lang) if lang else None
    body = highlight(code, lexer, _FORMATTER) if lexer else html.escape(code, quote=False)
    cls = f' class="language-{lang}"' if lang else ""
    data = f' data-lang="{lang}"' if lang else ""
    return f'<pre class="highlight"{data}><code{cls}>{body}</code></pre>\n'


def _image(
    self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # Below-the-fold images should not slow the first paint.
    tokens[idx].attrSet("loading", "lazy")
    return self.image(tokens, idx, options, env)


def make_markdown() -> MarkdownIt:
    md = (
        MarkdownIt("commonmark", {"highlight": _highlight, "typographer": False})
        .enable(["table", "strikethrough"])
        .use(footnote_plugin)
        .use(tasklists_plugin)
        .use(anchors_plugin, min_level=2, max_level=4, slug_func=_heading_slug)
    )
    md.add_render_rule("image", _image)
    return md


def _heading_slug(text: str) -> str:
    return slugify(text) or "section"


def render_markdown(md: MarkdownIt, body: str) -> str:
    return md.render(body)


_FIRST_PARAGRAPH = re.compile(r"<p>.*?</p>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def summarise(content_html: str, summary_text: str = "") -> str:
    """The HTML summary: front matter `summary`, else the part before `<!-- more -->`,
    else the first paragraph."""
    if summary_text:
        return f"<p>{html.escape(summary_text, quote=False)}</p>"
    head, marker, _ = content_html.partition(MORE_MARKER)
    if marker:
        return head.strip()
    match = _FIRST_PARAGRAPH.search(content_html)
    return match.group(0) if match else ""


def plain_text(fragment: str, limit: int = 0) -> str:
    """Strip tags and collapse whitespace; cut at a word boundary when `limit` is set."""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub("", fragment))).strip()
    if limit and len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"
    return text
