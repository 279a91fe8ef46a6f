"""Atom, JSON Feed, sitemap and robots.txt, rendered to bytes. Pure: no I/O.

Feed entries carry full HTML with every link made absolute, since feed readers do not
resolve links against the page they came from.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urljoin
from xml.sax.saxutils import escape, quoteattr

from fedipress.config import Config
from fedipress.documents.post import Post

_RELATIVE = re.compile(r'(\s(?:href|src)=")([^"]*)(")')


def absolutize(fragment: str, page_url: str) -> str:
    """Rewrite href/src values in an HTML fragment to absolute URLs against page_url."""
    return _RELATIVE.sub(
        lambda m: m.group(1) + urljoin(page_url, m.group(2)) + m.group(3), fragment
    )


def feed_body(post: Post, url: str) -> str:
    """The HTML a feed carries for a post: all of it, links absolute; for a post behind a
    content warning, the warning and a link, since feed readers show everything unfolded."""
    if post.content_warning:
        warning = html.escape(f"Content warning: {post.content_warning}", quote=False)
        link = html.escape(url)
        return f'<p>{warning}</p>\n<p><a href="{link}">Read the post</a></p>'
    return absolutize(post.content, url)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def feed_updated(posts: Sequence[Post]) -> datetime:
    """The newest change among the entries; a fixed epoch for an empty feed keeps builds
    reproducible."""
    dates = [p.last_modified for p in posts if p.last_modified]
    return max(dates) if dates else datetime(1970, 1, 1, tzinfo=UTC)


def render_atom(
    config: Config, posts: Sequence[Post], feed_path: str, page_path: str, title: str
) -> bytes:
    feed_url = config.absolute_url(feed_path)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang={quoteattr(config.language)}>',
        f"  <title>{escape(title)}</title>",
    ]
    if config.description:
        out.append(f"  <subtitle>{escape(config.description)}</subtitle>")
    out += [
        f"  <id>{escape(feed_url)}</id>",
        f'  <link rel="self" type="application/atom+xml" href={quoteattr(feed_url)}/>',
        f'  <link rel="alternate" type="text/html" '
        f"href={quoteattr(config.absolute_url(page_path))}/>",
        f"  <updated>{_iso(feed_updated(posts))}</updated>",
        "  <generator>fedipress</generator>",
    ]
    if config.author.name:
        out.append(
            f"  <author><name>{escape(config.author.name)}</name>"
            + (f"<uri>{escape(config.author.url)}</uri>" if config.author.url else "")
            + "</author>"
        )
    for post in posts:
        assert post.date is not None
        url = config.absolute_url(post.url)
        out += [
            "  <entry>",
            f"    <title>{escape(post.title)}</title>",
            f'    <link rel="alternate" type="text/html" href={quoteattr(url)}/>',
            f"    <id>{escape(url)}</id>",
            f"    <published>{_iso(post.date)}</published>",
            f"    <updated>{_iso(post.updated or post.date)}</updated>",
        ]
        out += [
            f"    <category term={quoteattr(t.name)} "
            f"scheme={quoteattr(config.absolute_url('/tags/'))}/>"
            for t in post.tags
        ]
        if post.description:
            out.append(f"    <summary>{escape(post.description)}</summary>")
        out.append(f'    <content type="html">{escape(feed_body(post, url))}</content>')
        out.append("  </entry>")
    out.append("</feed>\n")
    return "\n".join(out).encode()


def render_json_feed(config: Config, posts: Sequence[Post], feed_path: str) -> bytes:
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": config.title,
        "home_page_url": config.absolute_url("/"),
        "feed_url": config.absolute_url(feed_path),
        "language": config.language,
    }
    if config.description:
        feed["description"] = config.description
    if config.author.name:
        feed["authors"] = [
            {
                "name": config.author.name,
                **({"url": config.author.url} if config.author.url else {}),
            }
        ]
    items = []
    for post in posts:
        assert post.date is not None
        url = config.absolute_url(post.url)
        item: dict[str, object] = {
            "id": url,
            "url": url,
            "title": post.title,
            "content_html": feed_body(post, url),
            "date_published": _iso(post.date),
        }
        if post.updated:
            item["date_modified"] = _iso(post.updated)
        if post.description:
            item["summary"] = post.description
        if post.tags:
            item["tags"] = [t.name for t in post.tags]
        if post.image:
            item["image"] = urljoin(url, post.image)
        items.append(item)
    feed["items"] = items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode()


def render_sitemap(config: Config, entries: Sequence[tuple[str, datetime | None]]) -> bytes:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    for path, modified in entries:
        line = f"  <url><loc>{escape(config.absolute_url(path))}</loc>"
        if modified:
            line += f"<lastmod>{_iso(modified)}</lastmod>"
        out.append(line + "</url>")
    out.append("</urlset>\n")
    return "\n".join(out).encode()


def render_robots(config: Config) -> bytes:
    return f"User-agent: *\nAllow: /\n\nSitemap: {config.absolute_url('/sitemap.xml')}\n".encode()
