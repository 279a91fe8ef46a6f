"""The whole site as values: published posts in order, pages, tags, years, pagination.
Pure: no I/O; `now` is a parameter."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fedipress.config import Config
from fedipress.documents.post import Post, Tag
from fedipress.errors import Diagnostic, SourceLocation


@dataclass(frozen=True)
class Paginator:
    """One page of a paginated list; `number` is 1-based."""

    number: int
    total: int
    items: tuple[Post, ...]
    base: str  # the first page's path, e.g. '/' or '/tags/python/'

    def path_of(self, number: int) -> str:
        return self.base if number == 1 else f"{self.base}page/{number}/"

    @property
    def path(self) -> str:
        return self.path_of(self.number)

    @property
    def prev_path(self) -> str:
        return self.path_of(self.number - 1) if self.number > 1 else ""

    @property
    def next_path(self) -> str:
        return self.path_of(self.number + 1) if self.number < self.total else ""


def paginate(items: Sequence[Post], per_page: int, base: str) -> list[Paginator]:
    """Split items into pages; an empty list still gets one (empty) first page."""
    total = max(1, -(-len(items) // per_page))
    return [
        Paginator(n + 1, total, tuple(items[n * per_page : (n + 1) * per_page]), base)
        for n in range(total)
    ]


@dataclass(frozen=True)
class TagGroup:
    tag: Tag
    posts: tuple[Post, ...]


@dataclass(frozen=True)
class YearGroup:
    year: int
    posts: tuple[Post, ...]

    @property
    def path(self) -> str:
        return f"/archive/{self.year}/"


@dataclass(frozen=True)
class Site:
    config: Config
    posts: tuple[Post, ...]  # published, newest first
    pages: tuple[Post, ...]
    tags: tuple[TagGroup, ...]  # by name
    years: tuple[YearGroup, ...]  # newest first

    def neighbours(self, index: int) -> tuple[Post | None, Post | None]:
        """(newer, older) around posts[index]."""
        newer = self.posts[index - 1] if index > 0 else None
        older = self.posts[index + 1] if index + 1 < len(self.posts) else None
        return newer, older


def _sort_key(post: Post) -> tuple[datetime, str]:
    assert post.date is not None
    return (post.date, post.slug)


def is_published(post: Post, now: datetime, drafts: bool, future: bool) -> bool:
    if post.draft and not drafts:
        return False
    return not (post.date is not None and post.date > now and not future)


def build_site(
    config: Config,
    documents: Iterable[Post],
    now: datetime,
    drafts: bool = False,
    future: bool = False,
) -> tuple[Site, list[Diagnostic]]:
    """Select what is published, order it, group tags and years, and find URL clashes."""
    shown = [d for d in documents if is_published(d, now, drafts, future)]
    posts = sorted((d for d in shown if d.kind == "post"), key=_sort_key, reverse=True)
    pages = sorted((d for d in shown if d.kind == "page"), key=lambda p: p.url)
    diagnostics = _clashes(posts + pages)

    by_slug: dict[str, list[Post]] = defaultdict(list)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for post in posts:
        for tag in post.tags:
            by_slug[tag.slug].append(post)
            spellings[tag.slug][tag.name] += 1
    # "Python" and "python" are one tag; show the spelling most posts use.
    tags = sorted(
        (
            TagGroup(Tag(spellings[s].most_common(1)[0][0], s), tuple(ps))
            for s, ps in by_slug.items()
        ),
        key=lambda g: (g.tag.name.lower(), g.tag.slug),
    )
    by_year: dict[int, list[Post]] = defaultdict(list)
    for post in posts:
        assert post.date is not None
        by_year[post.date.year].append(post)
    years = [YearGroup(y, tuple(ps)) for y, ps in sorted(by_year.items(), reverse=True)]
    return Site(config, tuple(posts), tuple(pages), tuple(tags), tuple(years)), diagnostics


RESERVED = ("/tags/", "/archive/", "/page/")


def _clashes(documents: list[Post]) -> list[Diagnostic]:
    diagnostics = []
    by_url: dict[str, list[Post]] = defaultdict(list)
    by_uid: dict[str, list[Post]] = defaultdict(list)
    for doc in documents:
        by_url[doc.url].append(doc)
        if doc.kind == "post":
            by_uid[doc.uid].append(doc)
        if doc.url == "/" or doc.url.startswith(RESERVED):
            diagnostics.append(
                Diagnostic(
                    "error",
                    f"URL '{doc.url}' is reserved for generated pages",
                    SourceLocation(doc.source, 1, 1),
                    "choose another 'slug' or 'permalink'",
                )
            )
    # One clash is one error, at the later file, naming the others: two posts with the same
    # slug claim one URL and one id, and that is still one mistake.
    reported: set[tuple[str, ...]] = set()
    for url, claimants in by_url.items():
        if len(claimants) > 1:
            sources = tuple(sorted(c.source for c in claimants))
            reported.add(sources)
            diagnostics.append(
                Diagnostic(
                    "error",
                    f"{' and '.join(sources)} claim the same URL '{url}'",
                    SourceLocation(sources[-1], 1, 1),
                    "give one of them another 'slug'",
                )
            )
    for uid, claimants in by_uid.items():
        sources = tuple(sorted(c.source for c in claimants))
        if len(claimants) > 1 and sources not in reported:
            diagnostics.append(
                Diagnostic(
                    "error",
                    f"{' and '.join(sources)} share the id '{uid}'",
                    SourceLocation(sources[-1], 1, 1),
                    "ids are forever; give the newer post another 'slug' or 'id'",
                )
            )
    return diagnostics
