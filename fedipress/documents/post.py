"""Posts, pages and tags as values, with the slug, date and permalink rules. Pure: no I/O."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any, Literal

from fedipress.errors import ContentError, Diagnostic
from fedipress.yamltext import Positions

Kind = Literal["post", "page"]

# Front matter keys with a meaning; anything else is passed to templates in `post.extra`
# (a key close to one of these is taken for a typo and warned about: see `near_misses`).
KNOWN_KEYS = frozenset(
    {
        "title",
        "date",
        "updated",
        "slug",
        "tags",
        "summary",
        "description",
        "draft",
        "image",
        "image_alt",
        "id",
        "pinned",
        "post_type",
        "content_warning",
        "sensitive",
        "images",
        "template",
        "toc",
    }
)
# How alike a key must be to a known key to be taken for its typo ('darft' ~ 'draft' is 0.8;
# 'data' ~ 'date' is 0.75 and stays a key of its own).
TYPO_CUTOFF = 0.8
# `draft: "true"`: quoted booleans, as TOML-minded authors and some editors write them.
_QUOTED_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class Tag:
    name: str
    slug: str

    @property
    def url(self) -> str:
        return f"/tags/{self.slug}/"


@dataclass(frozen=True)
class Post:
    """One post or page, ready for templates and for the federation documents.

    `uid` is the stable identity of the post: it never changes when the title, date or
    permalink change, so federation ids built from it stay valid (front matter `id`).
    """

    kind: Kind
    source: str
    title: str
    slug: str
    url: str
    uid: str
    date: datetime | None
    updated: datetime | None
    tags: tuple[Tag, ...]
    summary: str
    description: str
    content: str
    draft: bool = False
    image: str = ""
    image_alt: str = ""
    pinned: bool = False
    post_type: str = ""
    content_warning: str = ""
    sensitive: bool | None = None
    images: tuple[tuple[str, str], ...] = ()
    template: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    bundle: str = ""
    resources: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    word_count: int = 0
    toc: tuple[tuple[int, str, str], ...] = ()  # (level, anchor, text) with `toc: true`
    anchors: tuple[str, ...] = ()  # every id in the content, for `#fragment` link checks
    warnings: tuple[Diagnostic, ...] = ()  # found while parsing: typos in front matter keys

    @property
    def reading_minutes(self) -> int:
        return max(1, round(self.word_count / 230))

    @property
    def last_modified(self) -> datetime | None:
        return self.updated or self.date


_SLUG_STRIP = re.compile(r"[^\w\s-]", re.UNICODE)
_SLUG_DASH = re.compile(r"[\s_-]+", re.UNICODE)
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[-_]")
_UID = re.compile(r"\w[\w/-]*", re.UNICODE)


def slugify(text: str) -> str:
    """Lower-case words joined by '-': 'Hello, World!' -> 'hello-world'. Keeps non-Latin letters."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _SLUG_STRIP.sub("", text)
    return _SLUG_DASH.sub("-", text).strip("-")


def slug_from_filename(stem: str) -> str:
    """'2024-05-01-hello-world' -> 'hello-world' (a Jekyll-style date prefix is dropped)."""
    return slugify(_DATE_PREFIX.sub("", stem))


def parse_date(value: Any, tz: tzinfo) -> datetime:
    """Parse a front matter date; a date without an offset is in the site's time zone.

    Raises ValueError for anything that is not a date.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    else:
        raise ValueError(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def render_permalink(pattern: str, slug: str, when: datetime | None) -> str:
    """Fill '/posts/{slug}/'-style patterns; dates use the post's own time zone."""
    values = {"slug": slug}
    if when is not None:
        values |= {
            "year": f"{when.year:04d}",
            "month": f"{when.month:02d}",
            "day": f"{when.day:02d}",
        }
    return pattern.format(**values)


@dataclass(frozen=True)
class Meta:
    """Validated front matter fields, before the body is rendered."""

    title: str
    date: datetime | None
    updated: datetime | None
    slug: str
    uid: str
    tags: tuple[str, ...]
    summary: str
    description: str
    draft: bool
    image: str
    image_alt: str
    pinned: bool
    post_type: str
    content_warning: str
    sensitive: bool | None
    images: tuple[tuple[str, str], ...]
    template: str
    toc: bool
    extra: dict[str, Any]
    warnings: tuple[Diagnostic, ...] = ()


def parse_meta(
    meta: Mapping[str, Any], positions: Positions, kind: Kind, default_slug: str, tz: tzinfo
) -> Meta:
    """Check front matter values; raise ContentError naming the key and its line."""

    def fail(key: str, message: str, hint: str = "") -> ContentError:
        return ContentError(message, positions.value(key), hint)

    def text(key: str, required: bool = False) -> str:
        value = meta.get(key)
        if value is None:
            if required:
                raise ContentError(
                    f"missing required front matter key '{key}'",
                    positions.value(key),
                    f"add a line such as '{key}: "
                    + ("My first post'" if key == "title" else "2024-05-01'"),
                )
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise fail(key, f"front matter key '{key}' must be text (got {type(value).__name__})")
        return str(value)

    def flag(key: str, default: bool | None = False) -> Any:
        value = meta.get(key, default)
        if isinstance(value, str) and value.strip().lower() in _QUOTED_BOOLEANS:
            return _QUOTED_BOOLEANS[value.strip().lower()]
        if value is not None and not isinstance(value, bool):
            raise fail(
                key,
                f"front matter key '{key}' must be true or false (got {value!r})",
                f"write '{key}: true' or '{key}: false'",
            )
        return value

    def when(key: str) -> datetime | None:
        value = meta.get(key)
        if value is None:
            return None
        try:
            return parse_date(value, tz)
        except (ValueError, TypeError):
            raise fail(
                key,
                f"front matter key '{key}' is not a date (got '{value}')",
                "use YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS+01:00 with a time and offset",
            ) from None

    title = text("title", required=True)
    if not title.strip():
        raise fail("title", "front matter key 'title' is empty")
    if kind == "post" and meta.get("date") is None:
        text("date", required=True)
    published = when("date")
    updated = when("updated")
    if published and updated and updated < published:
        raise fail("updated", "front matter key 'updated' is earlier than 'date'")
    slug = text("slug") or default_slug
    if not slug or slugify(slug) != slug:
        raise fail(
            "slug" if "slug" in meta else "title",
            f"'{slug}' is not a usable slug",
            f"use lower-case words joined by '-', such as '{slugify(title) or 'my-post'}'",
        )
    raw_tags = meta.get("tags") or []
    if isinstance(raw_tags, str):
        raw_tags = [t.strip() for t in raw_tags.split(",") if t.strip()]
    if not isinstance(raw_tags, list) or not all(isinstance(t, str | int) for t in raw_tags):
        raise fail("tags", "front matter key 'tags' must be a list of words", "tags: [python, web]")
    tags = tuple(dict.fromkeys(str(t).strip() for t in raw_tags if str(t).strip()))
    for tag in tags:
        if not slugify(tag):
            raise fail("tags", f"tag '{tag}' has no letters or digits")
    images = _images(meta, fail)
    uid = text("id") or slug
    if not _UID.fullmatch(uid) or uid != uid.lower():
        raise fail("id", f"'id' must be lower-case words joined by '-' (got {uid!r})")
    post_type = text("post_type")
    if post_type and post_type not in ("Note", "Article"):
        raise fail("post_type", f"'post_type' must be Note or Article (got {post_type!r})")
    return Meta(
        title=title.strip(),
        date=published,
        updated=updated,
        slug=slug,
        uid=uid,
        tags=tags,
        summary=text("summary"),
        description=text("description"),
        draft=flag("draft"),
        image=text("image"),
        image_alt=text("image_alt"),
        pinned=flag("pinned"),
        post_type=post_type,
        content_warning=text("content_warning"),
        sensitive=flag("sensitive", None),
        images=images,
        template=text("template"),
        toc=flag("toc"),
        extra={k: v for k, v in meta.items() if k not in KNOWN_KEYS},
        warnings=near_misses(meta, positions),
    )


def near_misses(meta: Mapping[str, Any], positions: Positions) -> tuple[Diagnostic, ...]:
    """A warning for each key that looks like a typo of a known key ('darft', 'Title'):
    such a key would silently do nothing. Keys of the site's own stay allowed."""
    warnings = []
    for key in meta:
        if key in KNOWN_KEYS:
            continue
        lower = key.lower()
        close = [lower] if lower in KNOWN_KEYS else []
        close = close or difflib.get_close_matches(lower, KNOWN_KEYS, n=1, cutoff=TYPO_CUTOFF)
        if close:
            warnings.append(
                Diagnostic(
                    "warning",
                    f"unknown front matter key '{key}': did you mean '{close[0]}'?",
                    positions.key(key),
                    f"rename it to '{close[0]}'; keys of your own for templates go under "
                    "'params:' (post.extra.params)",
                )
            )
    return tuple(warnings)


def _images(meta: Mapping[str, Any], fail: Any) -> tuple[tuple[str, str], ...]:
    """`images:` is a list of file names or {src, alt} mappings (attachments, galleries)."""
    raw = meta.get("images") or []
    if not isinstance(raw, list):
        raise fail("images", "front matter key 'images' must be a list")
    result = []
    for item in raw:
        if isinstance(item, str):
            result.append((item, ""))
        elif isinstance(item, dict) and isinstance(item.get("src"), str):
            result.append((item["src"], str(item.get("alt", ""))))
        else:
            raise fail("images", "each entry of 'images' is a file name or {src: ..., alt: ...}")
    return tuple(result)
