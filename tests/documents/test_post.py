from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fedipress.documents.frontmatter import split_front_matter
from fedipress.documents.post import (
    parse_date,
    parse_meta,
    render_permalink,
    slug_from_filename,
    slugify,
)
from fedipress.errors import ContentError

BERLIN = ZoneInfo("Europe/Berlin")


def meta_of(text: str, kind: str = "post", default_slug: str = "hello"):
    fm = split_front_matter(text, "content/posts/hello.md")
    return parse_meta(fm.meta, fm.positions, kind, default_slug, BERLIN)


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Hello, World!", "hello-world"),
        ("  Many   spaces_and_underscores ", "many-spaces-and-underscores"),
        ("Ünïcödé Straße", "ünïcödé-straße"),
        ("日本語のタイトル", "日本語のタイトル"),
        ("C++ & Rust: a tale", "c-rust-a-tale"),
    ],
)
def test_slugify__examples(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_slug_from_filename__drops_jekyll_date_prefix() -> None:
    assert slug_from_filename("2024-05-01-first-light") == "first-light"
    assert slug_from_filename("2024-notes") == "2024-notes"


def test_parse_date__date_only_is_midnight_in_site_zone() -> None:
    assert parse_date("2024-07-01", BERLIN) == datetime(2024, 7, 1, tzinfo=BERLIN)
    assert parse_date("2024-07-01", BERLIN).utcoffset() == timedelta(hours=2)


def test_parse_date__offset_and_z_are_kept() -> None:
    assert parse_date("2024-01-02T03:04:05Z", BERLIN) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    plus_one = parse_date("2024-01-02 03:04:05+01:00", BERLIN)
    assert plus_one.utcoffset() == timedelta(hours=1)
    assert plus_one.tzinfo == timezone(timedelta(hours=1))


@pytest.mark.parametrize("value", ["2024-13-01", "yesterday", "2024/01/02", ""])
def test_parse_date__rejects_non_dates(value: str) -> None:
    with pytest.raises(ValueError):
        parse_date(value, BERLIN)


def test_render_permalink__uses_post_date_fields() -> None:
    when = datetime(2024, 3, 9, 23, 30, tzinfo=BERLIN)
    assert render_permalink("/{year}/{month}/{day}/{slug}/", "x", when) == "/2024/03/09/x/"
    assert render_permalink("/posts/{slug}/", "x", None) == "/posts/x/"


def test_front_matter__body_line_and_meta() -> None:
    fm = split_front_matter("---\ntitle: Hi\ndate: 2024-01-01\n---\nBody\n", "a.md")
    assert fm.meta == {"title": "Hi", "date": "2024-01-01"}
    assert fm.body == "Body\n"
    assert fm.body_line == 4


def test_front_matter__missing_fence_names_file_and_line() -> None:
    with pytest.raises(ContentError) as info:
        split_front_matter("title: Hi\n", "content/posts/a.md")
    assert str(info.value.location) == "content/posts/a.md:1:1"
    assert "---" in info.value.hint


def test_front_matter__unclosed_is_an_error() -> None:
    with pytest.raises(ContentError, match="not closed"):
        split_front_matter("---\ntitle: Hi\n", "a.md")


def test_front_matter__bad_yaml_points_at_line() -> None:
    with pytest.raises(ContentError) as info:
        split_front_matter("---\ntitle: Hi\ntags: [a, b\n---\n", "a.md")
    assert info.value.location is not None
    assert info.value.location.line >= 3
    assert "invalid YAML" in info.value.message


def test_front_matter__bom_is_ignored() -> None:
    assert split_front_matter("\ufeff---\ntitle: x\n---\n", "a.md").meta == {"title": "x"}


def test_parse_meta__full_set_of_keys() -> None:
    meta = meta_of(
        "---\ntitle: Hello\ndate: 2024-05-01 10:00\nupdated: 2024-05-02\nslug: custom\n"
        "tags: [Python, web, Python]\nsummary: Short.\ndescription: Desc.\ndraft: true\n"
        "image: cover.png\nimage_alt: A cover\nmood: happy\n---\n"
    )
    assert meta.title == "Hello"
    assert meta.date == datetime(2024, 5, 1, 10, 0, tzinfo=BERLIN)
    assert meta.updated == datetime(2024, 5, 2, tzinfo=BERLIN)
    assert meta.slug == "custom"
    assert meta.uid == "custom"
    assert meta.tags == ("Python", "web")
    assert (meta.summary, meta.description, meta.draft) == ("Short.", "Desc.", True)
    assert (meta.image, meta.image_alt) == ("cover.png", "A cover")
    assert meta.extra == {"mood": "happy"}


def test_parse_meta__tags_as_comma_string() -> None:
    assert meta_of("---\ntitle: x\ndate: 2024-01-01\ntags: a, b ,c\n---\n").tags == ("a", "b", "c")


def test_parse_meta__id_keeps_identity_across_renames() -> None:
    meta = meta_of("---\ntitle: x\ndate: 2024-01-01\nslug: new-name\nid: old-name\n---\n")
    assert (meta.slug, meta.uid) == ("new-name", "old-name")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("---\ndate: 2024-01-01\n---\n", "missing required front matter key 'title'", 0),
        ("---\ntitle: x\n---\n", "missing required front matter key 'date'", 0),
        ("---\ntitle: x\ndate: 2024-13-01\n---\n", "'date' is not a date (got '2024-13-01')", 3),
        (
            "---\ntitle: x\ndate: 2024-01-01\ndraft: maybe\n---\n",
            "'draft' must be true or false",
            4,
        ),
        ("---\ntitle: x\ndate: 2024-01-01\ntags: {a: 1}\n---\n", "'tags' must be a list", 4),
        ("---\ntitle: x\ndate: 2024-01-01\nslug: Not A Slug\n---\n", "is not a usable slug", 4),
        ("---\ntitle: x\ndate: 2024-02-01\nupdated: 2024-01-01\n---\n", "earlier than 'date'", 4),
        ("---\ntitle: [1, 2]\ndate: 2024-01-01\n---\n", "'title' must be text", 2),
    ],
)
def test_parse_meta__errors_name_key_and_line(text: str, message: str, line: int) -> None:
    with pytest.raises(ContentError) as info:
        meta_of(text)
    assert message in info.value.message
    if line:
        assert info.value.location is not None
        assert info.value.location.line == line
        assert info.value.location.path == "content/posts/hello.md"


def test_parse_meta__page_needs_no_date() -> None:
    meta = meta_of("---\ntitle: About\n---\n", kind="page", default_slug="about")
    assert meta.date is None
    assert meta.slug == "about"
