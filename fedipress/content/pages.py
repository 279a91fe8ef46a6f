"""Plan every page, feed and copied file of a site, with the context each template gets.

docs/themes.md is the contract for these contexts. `PageHook`s let other parts (the
federation documents) add `<link rel=alternate>` and `<meta>` tags without the theme or
this module knowing about them.
"""

from __future__ import annotations

import dataclasses
import gc
import re
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import jinja2

from fedipress import __version__
from fedipress.config import Author, Config, FediverseConfig, MenuItem
from fedipress.content.feeds import render_atom, render_json_feed, render_robots, render_sitemap
from fedipress.content.output import Output, digest, file_for
from fedipress.content.site import Paginator, Site, YearGroup, paginate
from fedipress.content.theme import render_template
from fedipress.documents.post import Post, Tag
from fedipress.documents.topics import topic_slugs
from fedipress.documents.urls import Urls
from fedipress.errors import Diagnostic, SourceLocation

ACTOR_PATH = "/ap/actor"


@dataclass(frozen=True)
class Alternate:
    type: str
    href: str
    title: str = ""
    rel: str = "alternate"


@dataclass(frozen=True)
class PageInfo:
    """`page` in every template: what the <head> needs."""

    kind: str  # home, post, page, tag, tags, archive, 404
    path: str
    title: str
    canonical: str
    description: str
    og_type: str = "website"
    image: str = ""
    image_alt: str = ""
    alternates: tuple[Alternate, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()
    noindex: bool = False


@dataclass(frozen=True)
class TopicInfo:
    """A topic account (`fediverse.accounts`), as templates show it: the tag pages it
    carries get a follow box of their own."""

    username: str
    handle: str  # '@rust@host'
    actor_url: str
    display_name: str
    tags: tuple[str, ...]
    slugs: frozenset[str]


@dataclass(frozen=True)
class SiteInfo:
    """`site` in every template."""

    title: str
    description: str
    language: str
    base_url: str
    author: Author
    menu: tuple[MenuItem, ...]
    params: Mapping[str, Any]
    fediverse: FediverseConfig | None
    handle: str  # '@user@host' when the site is a Fediverse account, else ''
    actor_url: str  # the ActivityPub actor's id when the site is a Fediverse account, else ''
    pages: tuple[Post, ...]
    generator: str = f"fedipress {__version__}"
    topics: tuple[TopicInfo, ...] = ()

    def topics_for(self, tag: Tag) -> list[TopicInfo]:
        """The topic accounts that carry the posts of this tag."""
        return [topic for topic in self.topics if tag.slug in topic.slugs]


@dataclass(frozen=True)
class HeadExtras:
    """What a hook adds to a page: `<head>` links and meta tags, and on post pages template
    variables (`context`), with a `key` that changes whenever they do (so that exactly the
    pages whose additions changed are rendered again)."""

    alternates: tuple[Alternate, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""


# A hook sees the page kind and, on post and page pages, the document. It is asked at plan
# time for every post, so it must be cheap: `context` values are rendered only when needed.
PageHook = Callable[[str, Post | None], HeadExtras]


@dataclass
class Planner:
    """Builds the list of Outputs for one site. Content comes through `full`, which returns a
    post with its HTML (cached posts travel without it)."""

    site: Site
    env: jinja2.Environment
    global_key: str
    full: Callable[[Post], Post]
    fingerprints: Mapping[str, tuple[str, str]]  # source -> (full, card)
    hooks: Sequence[PageHook] = ()
    url_by_source: dict[str, str] = field(default_factory=dict)
    _md_links: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def config(self) -> Config:
        return self.site.config

    def site_info(self) -> SiteInfo:
        c = self.config
        handle = f"@{c.fediverse.username}@{c.host}" if c.fediverse else ""
        actor_url = c.absolute_url(ACTOR_PATH) if c.fediverse else ""
        return SiteInfo(
            c.title,
            c.description,
            c.language,
            c.base_url,
            c.author,
            c.menu,
            c.params,
            c.fediverse,
            handle,
            actor_url,
            self.site.pages,
            topics=tuple(
                TopicInfo(
                    a.username,
                    f"@{a.username}@{c.host}",
                    Urls(c, a.username).actor(),
                    a.display_name,
                    a.tags,
                    topic_slugs(a),
                )
                for a in (c.fediverse.accounts if c.fediverse else ())
            ),
        )

    # --- keys ---------------------------------------------------------------------------

    def card(self, post: Post | None) -> str:
        return self.fingerprints[post.source][1] if post else ""

    def whole(self, post: Post) -> str:
        return self.fingerprints[post.source][0]

    # --- rendering ----------------------------------------------------------------------

    def head(self, kind: str, post: Post | None) -> HeadExtras:
        alternates: list[Alternate] = []
        meta: list[tuple[str, str]] = []
        contexts: list[Any] = []  # Mappings; ChainMap's stubs ask for MutableMapping
        keys: list[str] = []
        for hook in self.hooks:
            extra = hook(kind, post)
            alternates += extra.alternates
            meta += extra.meta
            contexts.append(extra.context)
            keys.append(extra.key)
        key = digest(keys) if any(keys) else ""
        # A ChainMap reads the hooks' values only when the page renders.
        return HeadExtras(tuple(alternates), tuple(meta), ChainMap(*contexts), key)

    def page_info(
        self,
        kind: str,
        path: str,
        title: str,
        post: Post | None = None,
        description: str = "",
        extra_alternates: Sequence[Alternate] = (),
        head: HeadExtras | None = None,
    ) -> PageInfo:
        c = self.config
        feeds = [
            Alternate("application/atom+xml", c.url("/feed.xml"), c.title),
            Alternate("application/feed+json", c.url("/feed.json"), c.title),
        ]
        head = head if head is not None else self.head(kind, post)
        image = ""
        if post and post.image:
            image = urljoin(c.absolute_url(post.url), post.image)
        return PageInfo(
            kind=kind,
            path=path,
            title=title,
            canonical=c.absolute_url(path),
            description=description or (post.description if post else "") or c.description,
            og_type="article" if kind == "post" else "website",
            image=image,
            image_alt=post.image_alt if post else "",
            alternates=tuple(feeds) + tuple(extra_alternates) + head.alternates,
            meta=head.meta,
            noindex=kind == "404",
        )

    def render(self, template: str, context: dict[str, Any]) -> bytes:
        context = {"site": self.site_info(), "config": self.config, **context}
        return render_template(self.env, template, context).encode()

    def with_links(self, post: Post) -> Post:
        """The post with its HTML, and links to other Markdown files turned into URLs."""
        post = self.full(post)
        mapping = self.md_links(post)
        if not mapping:
            return post
        content = _HREF_ATTR.sub(
            lambda m: m.group(1) + mapping.get(m.group(2), m.group(2)) + m.group(3), post.content
        )
        return dataclasses.replace(post, content=content)

    def as_card(self, post: Post) -> Post:
        """The post as list pages show it: its summary's links work away from the post's own
        page (links to Markdown files become URLs, relative links become root-relative)."""
        mapping = self.md_links(post)

        def fix(match: re.Match[str]) -> str:
            href = match.group(2)
            if href in mapping:
                href = mapping[href]
            elif not href.startswith(_NOT_RELATIVE):
                href = self.config.url(urljoin(post.url, href))
            return match.group(1) + href + match.group(3)

        return dataclasses.replace(post, summary=_LINK_ATTR.sub(fix, post.summary))

    def md_links(self, post: Post) -> dict[str, str]:
        """Links to other Markdown files in this post, resolved to URLs (memoised per plan)."""
        cached = self._md_links.get(post.source)
        if cached is not None:
            return cached
        result = {}
        for href in post.links:
            if ".md" not in href:
                continue
            target = _resolve_md(post.source, href)
            if target and target[0] in self.url_by_source:
                result[href] = self.config.url(self.url_by_source[target[0]]) + target[1]
        self._md_links[post.source] = result
        return result

    # --- the plan -----------------------------------------------------------------------

    def plan(self) -> list[Output]:
        # Thousands of outputs and closures, no garbage cycles: the collector only slows it.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._plan()
        finally:
            if enabled:
                gc.enable()

    def _plan(self) -> list[Output]:
        site = self.site
        self.url_by_source = {p.source: p.url for p in site.posts + site.pages}
        outputs: list[Output] = []
        outputs += self._lists("home", "index.html", site.posts, "/", {})
        for index, post in enumerate(site.posts):
            outputs.append(self._post(index, post))
        for page in site.pages:
            outputs.append(self._page(page))
        for group in site.tags:
            outputs += self._lists(
                "tag", "tag.html", group.posts, group.tag.url, {"tag": group.tag}
            )
            outputs.append(
                self._feed_output(
                    group.posts,
                    f"{group.tag.url}feed.xml",
                    group.tag.url,
                    f"{self.config.title}: #{group.tag.name}",
                )
            )
        outputs.append(self._tags())
        outputs += self._archives()
        outputs.append(self._not_found())
        outputs += self._feeds()
        return outputs

    def _lists(
        self, kind: str, template: str, posts: Sequence[Post], base: str, extra: dict[str, Any]
    ) -> list[Output]:
        result = []
        per_page = self.config.posts_per_page
        for paginator in paginate(posts, per_page, base):
            key = digest(
                [
                    self.global_key,
                    kind,
                    template,
                    paginator.number,
                    paginator.total,
                    base,
                    repr(extra),
                    [(self.card(p), sorted(self.md_links(p).items())) for p in paginator.items],
                ]
            )
            result.append(
                Output(
                    file_for(paginator.path),
                    key,
                    self._list_renderer(kind, template, paginator, extra),
                )
            )
        return result

    def _list_renderer(
        self, kind: str, template: str, paginator: Paginator, extra: dict[str, Any]
    ) -> Callable[[], bytes]:
        def render() -> bytes:
            tag = extra.get("tag")
            title = f"#{tag.name}" if tag else ""
            if paginator.number > 1:
                title = f"{title} (page {paginator.number})".strip()
            alternates = []
            if tag:
                alternates.append(
                    Alternate(
                        "application/atom+xml",
                        self.config.url(f"{tag.url}feed.xml"),
                        f"{self.config.title}: #{tag.name}",
                    )
                )
            page = self.page_info(kind, paginator.path, title, extra_alternates=alternates)
            shown = dataclasses.replace(
                paginator, items=tuple(self.as_card(p) for p in paginator.items)
            )
            return self.render(
                template, {"page": page, "paginator": shown, "posts": shown.items, **extra}
            )

        return render

    def _post(self, index: int, post: Post) -> Output:
        newer, older = self.site.neighbours(index)
        template = post.template or "post.html"
        head = self.head("post", post)
        key = digest(
            [
                self.global_key,
                "post",
                template,
                self.whole(post),
                self.card(newer),
                self.card(older),
                sorted(self.md_links(post).items()),
                head.key,
            ]
        )

        def render() -> bytes:
            full = self.with_links(post)
            page = self.page_info("post", post.url, post.title, post, head=head)
            return self.render(
                template,
                {**head.context, "page": page, "post": full, "newer": newer, "older": older},
            )

        return Output(file_for(post.url), key, render)

    def _page(self, post: Post) -> Output:
        template = post.template or "page.html"
        key = digest(
            [
                self.global_key,
                "page",
                template,
                self.whole(post),
                sorted(self.md_links(post).items()),
            ]
        )

        def render() -> bytes:
            page = self.page_info("page", post.url, post.title, post)
            return self.render(template, {"page": page, "post": self.with_links(post)})

        return Output(file_for(post.url), key, render)

    def _tags(self) -> Output:
        groups = self.site.tags
        key = digest([self.global_key, "tags", [(g.tag, len(g.posts)) for g in groups]])

        def render() -> bytes:
            page = self.page_info("tags", "/tags/", "Tags")
            return self.render("tags.html", {"page": page, "tags": groups})

        return Output("tags/index.html", key, render)

    def _archives(self) -> list[Output]:
        years = self.site.years
        cards = [[self.card(p) for p in y.posts] for y in years]
        outputs = [
            Output(
                "archive/index.html",
                digest([self.global_key, "archive", cards]),
                self._archive_renderer("/archive/", "Archive", years, None),
            )
        ]
        for group, group_cards in zip(years, cards, strict=True):
            outputs.append(
                Output(
                    file_for(group.path),
                    digest([self.global_key, "year", group.year, group_cards]),
                    self._archive_renderer(group.path, str(group.year), (group,), group.year),
                )
            )
        return outputs

    def _archive_renderer(
        self, path: str, title: str, years: Sequence[YearGroup], year: int | None
    ) -> Callable[[], bytes]:
        def render() -> bytes:
            page = self.page_info("archive", path, title)
            return self.render("archive.html", {"page": page, "years": years, "year": year})

        return render

    def _not_found(self) -> Output:
        def render() -> bytes:
            page = self.page_info("404", "/404.html", "Page not found")
            return self.render("404.html", {"page": page})

        return Output("404.html", digest([self.global_key, "404"]), render)

    def _feed_output(self, posts: Sequence[Post], path: str, page_path: str, title: str) -> Output:
        latest = posts[: self.config.feed_entries]
        key = digest(
            [
                self.global_key,
                "atom",
                path,
                title,
                [self.whole(p) for p in latest],
                [sorted(self.md_links(p).items()) for p in latest],
            ]
        )
        return Output(
            path.lstrip("/"),
            key,
            lambda: render_atom(
                self.config, [self.with_links(p) for p in latest], path, page_path, title
            ),
        )

    def _feeds(self) -> list[Output]:
        c = self.config
        latest = self.site.posts[: c.feed_entries]
        whole = [self.whole(p) for p in latest]
        sitemap = [("/", latest[0].last_modified if latest else None)]
        sitemap += [(p.url, p.last_modified) for p in self.site.posts + self.site.pages]
        sitemap += [(g.tag.url, None) for g in self.site.tags]
        return [
            self._feed_output(self.site.posts, "/feed.xml", "/", c.title),
            Output(
                "feed.json",
                digest([self.global_key, "json", whole]),
                lambda: render_json_feed(c, [self.with_links(p) for p in latest], "/feed.json"),
            ),
            Output(
                "sitemap.xml",
                digest([self.global_key, "sitemap", sitemap]),
                lambda: render_sitemap(c, sitemap),
            ),
            Output("robots.txt", digest([self.global_key, "robots"]), lambda: render_robots(c)),
        ]


_HREF_ATTR = re.compile(r'(\shref=")([^"]*)(")')
_LINK_ATTR = re.compile(r'(\s(?:href|src)=")([^"]*)(")')
_NOT_RELATIVE = ("/", "#", "?", "http:", "https:", "mailto:", "data:", "tel:")


def _resolve_md(source: str, href: str) -> tuple[str, str] | None:
    """'../other.md#x' seen in content/posts/a.md -> ('content/posts/other.md', '#x')."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path.endswith(".md"):
        return None
    base = PurePosixPath(source).parent
    if parts.path.startswith("/"):
        target = PurePosixPath("content") / parts.path.lstrip("/")
    else:
        target = base / parts.path
    normal: list[str] = []
    for piece in target.parts:
        if piece == "..":
            if normal:
                normal.pop()
        elif piece != ".":
            normal.append(piece)
    return "/".join(normal), (f"#{parts.fragment}" if parts.fragment else "")


LineOf = Callable[[str, str], int]  # (source, text in it) -> its 1-based line, 0: unknown


@dataclass(frozen=True)
class LinkTargets:
    """What an internal link may point at: the files the build writes, the published
    documents and the hidden ones (drafts, future posts), by source and by URL, and the
    ids every page has from the theme (`#main`)."""

    known: set[str]
    shown: Sequence[Post]
    hidden: Sequence[Post] = ()
    page_ids: frozenset[str] = frozenset()

    def by_source(self) -> dict[str, tuple[Post, bool]]:
        return {p.source: (p, False) for p in self.hidden} | {
            p.source: (p, True) for p in self.shown
        }

    def by_url(self) -> dict[str, tuple[Post, bool]]:
        return {p.url: (p, False) for p in self.hidden} | {p.url: (p, True) for p in self.shown}


def _no_line(_source: str, _text: str) -> int:
    return 0


def check_links(
    documents: Iterable[Post],
    config: Config,
    targets: LinkTargets,
    line_of: LineOf = _no_line,
) -> list[Diagnostic]:
    """Warn about internal links to pages or files the build does not produce, to drafts,
    and to `#anchors` that the page does not have; each at the line of the link."""
    warnings = []
    by_source, by_url = targets.by_source(), targets.by_url()
    for doc in documents:
        for href in doc.links:
            problem = _broken(doc, href, config, targets, by_source, by_url)
            if problem:
                message, hint = problem
                line = line_of(doc.source, href)
                warnings.append(
                    Diagnostic("warning", message, SourceLocation(doc.source, line), hint)
                )
    return warnings


def check_images(
    documents: Iterable[Post], config: Config, known: set[str], line_of: LineOf = _no_line
) -> list[Diagnostic]:
    """Warn about a cover `image:` or an `images:` entry that the build does not produce:
    the page would show a broken image and link previews a missing one."""
    warnings = []
    for doc in documents:
        for key, src in [("image", doc.image)] + [("images", src) for src, _ in doc.images]:
            if not src or src.startswith(_EXTERNAL) or urlsplit(src).scheme:
                continue
            path = urlsplit(src).path
            if path.startswith("/"):
                base = config.base_path
                path = path[len(base) :] if base and path.startswith(base + "/") else path
            else:
                path = urlsplit(urljoin(doc.url, path)).path
            if file_for(path) in known:
                continue
            where = line_of(doc.source, src) or line_of(doc.source, f"{key}:")
            hint = (
                "put the file in the page bundle beside index.md"
                if doc.bundle and not src.startswith("/")
                else "put the file in static/, or fix the name"
            )
            warnings.append(
                Diagnostic(
                    "warning",
                    f"{key} '{src}' does not exist: the page would show a broken image",
                    SourceLocation(doc.source, where),
                    hint,
                )
            )
    return warnings


_EXTERNAL = ("http://", "https://", "mailto:", "data:", "//", "tel:")
_FIX_LINK = "fix the link or add the missing post"


def _broken(
    doc: Post,
    href: str,
    config: Config,
    targets: LinkTargets,
    by_source: Mapping[str, tuple[Post, bool]],
    by_url: Mapping[str, tuple[Post, bool]],
) -> tuple[str, str] | None:
    """(message, hint) when `href` in `doc` leads nowhere, else None."""
    if href.startswith(_EXTERNAL):
        return None
    if href.startswith("#"):
        return _missing_anchor(doc, href, href[1:], targets)
    md = _resolve_md(doc.source, href) if ".md" in href else None
    if md is not None:
        found = by_source.get(md[0])
        if found is None:
            return f"broken link to missing post '{href}'", _FIX_LINK
        target, shown = found
        if not shown:
            return _hidden(href, target)
        return _missing_anchor(target, href, md[1].lstrip("#"), targets)
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return None
    if parts.path.startswith("/"):
        base = config.base_path
        if base and not parts.path.startswith(base + "/"):
            return None  # outside the site: nothing to check
        path = parts.path[len(base) :]
    else:
        path = urlsplit(urljoin(doc.url, parts.path)).path
    if not path:
        return None
    page = by_url.get(path if path.endswith("/") else path + "/") or by_url.get(path)
    output = file_for(path)
    if output in targets.known or f"{output}/index.html" in targets.known:
        if page is not None and page[1]:
            return _missing_anchor(page[0], href, parts.fragment, targets)
        return None
    if page is not None and not page[1]:
        return _hidden(href, page[0])
    return f"broken internal link '{href}'", _FIX_LINK


def _hidden(href: str, target: Post) -> tuple[str, str]:
    if target.draft:
        return (
            f"link to the draft '{href}', which is not published",
            f"publish {target.source} (remove 'draft: true') or remove the link",
        )
    return (
        f"link to '{href}', which is dated in the future and not published yet",
        "the link works once the post is published; build with --future to preview it",
    )


def _missing_anchor(
    target: Post, href: str, fragment: str, targets: LinkTargets
) -> tuple[str, str] | None:
    fragment = unquote(fragment)
    if not fragment or fragment in target.anchors or fragment in targets.page_ids:
        return None
    where = "this page" if href.startswith("#") else f"'{target.source}'"
    return (
        f"broken link '{href}': {where} has no anchor '#{fragment}'",
        "headings get anchors from their text, such as '## Feeding ratios' -> '#feeding-ratios'",
    )
