from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fedipress.config import Config
from fedipress.content.site import build_site, paginate
from fedipress.documents.post import Post, Tag

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def post(slug: str, days: int = 0, **fields) -> Post:
    values = dict(
        kind="post",
        source=f"content/posts/{slug}.md",
        title=slug.title(),
        slug=slug,
        url=f"/posts/{slug}/",
        uid=slug,
        date=NOW - timedelta(days=days),
        updated=None,
        tags=(),
        summary="",
        description="",
        content="",
    )
    values.update(fields)
    return Post(**values)


def test_paginate__sizes_and_paths() -> None:
    items = [post(f"p{i}") for i in range(25)]
    pages = paginate(items, 10, "/")
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert [p.path for p in pages] == ["/", "/page/2/", "/page/3/"]
    assert (pages[0].prev_path, pages[0].next_path) == ("", "/page/2/")
    assert (pages[2].prev_path, pages[2].next_path) == ("/page/2/", "")


def test_paginate__empty_list_has_one_page() -> None:
    pages = paginate([], 10, "/tags/x/")
    assert len(pages) == 1 and pages[0].items == () and pages[0].total == 1


def test_build_site__newest_first_drafts_and_future_left_out() -> None:
    docs = [post("old", 10), post("new", 1), post("draft", 2, draft=True), post("future", -3)]
    site, problems = build_site(Config.for_test(), docs, NOW)
    assert [p.slug for p in site.posts] == ["new", "old"]
    assert problems == []
    site, _ = build_site(Config.for_test(), docs, NOW, drafts=True, future=True)
    assert [p.slug for p in site.posts] == ["future", "new", "draft", "old"]


def test_build_site__tags_merge_case_and_years_group() -> None:
    docs = [
        post("a", 1, tags=(Tag("Python", "python"),)),
        post("b", 400, tags=(Tag("python", "python"), Tag("Web", "web"))),
        post("c", 2, tags=(Tag("Python", "python"),)),
    ]
    site, _ = build_site(Config.for_test(), docs, NOW)
    assert [(g.tag.name, len(g.posts)) for g in site.tags] == [("Python", 3), ("Web", 1)]
    assert [(y.year, len(y.posts)) for y in site.years] == [(2024, 2), (2023, 1)]


def test_build_site__url_clash_is_one_error_naming_both_files() -> None:
    docs = [post("a"), post("b", url="/posts/a/")]
    _, problems = build_site(Config.for_test(), docs, NOW)
    assert len(problems) == 1
    assert problems[0].location is not None
    assert problems[0].location.path == "content/posts/b.md"
    assert "content/posts/a.md and content/posts/b.md claim the same URL '/posts/a/'" in (
        problems[0].message
    )


def test_build_site__one_duplicate_slug_is_one_error() -> None:
    # The same slug gives the same URL and the same id: still one mistake, one error.
    docs = [post("a"), post("b", url="/posts/a/", uid="a")]
    _, problems = build_site(Config.for_test(), docs, NOW)
    assert [p.severity for p in problems] == ["error"]


def test_build_site__reserved_url_is_an_error() -> None:
    _, problems = build_site(Config.for_test(), [post("tags", url="/tags/")], NOW)
    assert any("reserved" in p.message for p in problems)


def test_build_site__duplicate_uid_is_an_error() -> None:
    _, problems = build_site(Config.for_test(), [post("a"), post("b", uid="a")], NOW)
    assert any("share the id 'a'" in p.message for p in problems)
