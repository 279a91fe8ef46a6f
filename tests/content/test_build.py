"""Whole-site builds of small sites written inline in each test."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.app.build import BuildOptions, build, check
from fedipress.errors import BuildFailed, SourceLocation, ThemeError

NOW = datetime(2025, 6, 1, tzinfo=UTC)
CONFIG = """
-- fedipress.yaml --
title: Inline Blog
base_url: https://blog.example/
description: A test blog.
timezone: Europe/Berlin
posts_per_page: 2
author:
  name: Ada
"""


def opts(**kw) -> BuildOptions:
    kw.setdefault("now", lambda: NOW)
    kw.setdefault("jobs", 1)
    return BuildOptions(**kw)


def posts(n: int, **extra: str) -> str:
    out = []
    for i in range(n):
        day = 1 + i % 28
        month = 1 + (i // 28) % 12
        out.append(
            f"-- content/posts/post-{i:03d}.md --\n---\ntitle: Post {i}\n"
            f"date: 2024-{month:02d}-{day:02d}T10:00:00+01:00\ntags: [t{i % 3}, all]\n---\n"
            f"Intro of post {i}.\n\n<!-- more -->\n\n## Details\n\nMore text with `code` and "
            f"[a link](https://example.org/{i}).\n\n```python\nprint({i})\n```\n"
        )
    return "\n".join(out)


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_build__writes_every_kind_of_page(make_site) -> None:
    site = make_site(
        CONFIG
        + posts(5)
        + """
-- content/pages/about.md --
---
title: About
---
About me.
-- static/favicon.ico --
icon
"""
    )
    result = build(site, opts())
    out = site / "_site"
    names = set(files(out))
    for expected in [
        "index.html",
        "page/2/index.html",
        "page/3/index.html",
        "posts/post-000/index.html",
        "about/index.html",
        "tags/index.html",
        "tags/t0/index.html",
        "tags/all/page/3/index.html",
        "tags/t1/feed.xml",
        "archive/index.html",
        "archive/2024/index.html",
        "404.html",
        "feed.xml",
        "feed.json",
        "sitemap.xml",
        "robots.txt",
        "favicon.ico",
        "css/style.css",
        "css/syntax.css",
    ]:
        assert expected in names, expected
    assert "page/4/index.html" not in names
    assert result.posts == 5
    home = (out / "index.html").read_text()
    assert "Post 4" in home and "Post 3" in home and "Post 2" not in home  # newest first, 2 a page
    assert 'href="/page/2/"' in home


def test_build__post_page_has_canonical_og_and_content(make_site) -> None:
    site = make_site(CONFIG + posts(1))
    build(site, opts())
    html = (site / "_site/posts/post-000/index.html").read_text()
    assert '<link rel="canonical" href="https://blog.example/posts/post-000/">' in html
    assert '<meta property="og:type" content="article">' in html
    assert '<meta property="og:description" content="Intro of post 0.">' in html
    assert '<h2 id="details">Details</h2>' in html
    assert '<span class="nb">print</span>' in html


def test_feeds__well_formed_and_absolute(make_site) -> None:
    site = make_site(
        CONFIG
        + posts(3)
        + """
-- content/posts/rel/index.md --
---
title: Bundle
date: 2024-06-01
---
![pic](pic.png) and [other](/posts/post-000/).
-- content/posts/rel/pic.png --
png
"""
    )
    build(site, opts())
    out = site / "_site"
    ns = {"a": "http://www.w3.org/2005/Atom"}
    atom = ET.parse(out / "feed.xml").getroot()
    entries = atom.findall("a:entry", ns)
    assert len(entries) == 4
    assert entries[0].find("a:title", ns).text == "Bundle"
    content = entries[0].find("a:content", ns).text
    assert 'src="https://blog.example/posts/rel/pic.png"' in content
    assert 'href="https://blog.example/posts/post-000/"' in content
    assert (out / "posts/rel/pic.png").read_bytes() == b"png\n"
    feed = json.loads((out / "feed.json").read_text())
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert [i["title"] for i in feed["items"]][:2] == ["Bundle", "Post 2"]
    tag_feed = ET.parse(out / "tags/t0/feed.xml").getroot()
    assert len(tag_feed.findall("a:entry", ns)) == 1
    sitemap = ET.parse(out / "sitemap.xml").getroot()
    locs = [e.text for e in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert "https://blog.example/posts/rel/" in locs


def test_build__drafts_and_future(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/draft.md --
---
title: Draft
date: 2024-01-01
draft: true
---
x
-- content/posts/later.md --
---
title: Later
date: 2099-01-01
---
x
"""
    )
    build(site, opts())
    assert not (site / "_site/posts/draft").exists()
    assert not (site / "_site/posts/later").exists()
    build(site, opts(drafts=True, future=True))
    assert (site / "_site/posts/draft/index.html").exists()
    assert (site / "_site/posts/later/index.html").exists()


def test_build__md_links_become_permalinks_and_broken_ones_warn(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/a.md --
---
title: A
date: 2024-01-01
slug: first
---
See [B](b.md#part) and [gone](missing.md) and [nope](/posts/nope/).
-- content/posts/b.md --
---
title: B
date: 2024-01-02
---
## Part
"""
    )
    result = build(site, opts())
    html = (site / "_site/posts/first/index.html").read_text()
    assert 'href="/posts/b/#part"' in html
    messages = [w.message for w in result.warnings]
    assert "broken link to missing post 'missing.md'" in messages
    assert "broken internal link '/posts/nope/'" in messages
    with pytest.raises(BuildFailed) as info:
        build(site, opts(strict=True))
    assert "2 warnings" in str(info.value)


def test_build__stale_files_removed_and_unchanged_not_rewritten(make_site) -> None:
    site = make_site(CONFIG + posts(3))
    build(site, opts())
    out = site / "_site"
    kept = out / "posts/post-000/index.html"
    before = kept.stat()
    (site / "content/posts/post-002.md").unlink()
    result = build(site, opts())
    assert not (out / "posts/post-002").exists()
    after = kept.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert 0 < result.rendered < result.outputs
    again = build(site, opts())
    assert again.unchanged and again.rendered == 0


def test_build__failed_build_leaves_old_output(make_site) -> None:
    site = make_site(CONFIG + posts(2))
    build(site, opts())
    before = files(site / "_site")
    (site / "content/posts/bad.md").write_text("---\ntitle: Bad\ndate: nope\n---\n")
    with pytest.raises(BuildFailed):
        build(site, opts())
    assert files(site / "_site") == before
    assert not any(p.name.endswith(".staging") for p in site.iterdir())


def test_build__template_error_mid_render_leaves_old_output(make_site) -> None:
    site = make_site(CONFIG + posts(2))
    build(site, opts())
    before = files(site / "_site")
    (site / "templates").mkdir()
    (site / "templates/post.html").write_text(
        '{% extends "base.html" %}{% block main %}{{ post.no_such_field }}{% endblock %}\n'
    )
    with pytest.raises(BuildFailed) as info:
        build(site, opts())
    text = str(info.value)
    assert "no_such_field" in text and "post.html:1" in text
    assert files(site / "_site") == before


def test_build__byte_identical_cold_cached_and_parallel(make_site, tmp_path: Path) -> None:
    site = make_site(CONFIG + posts(230))
    cold = build(site, opts(output=tmp_path / "cold", use_cache=False, jobs=1))
    parallel = build(site, opts(output=tmp_path / "parallel", jobs=2))
    assert cold.outputs == parallel.outputs > 400
    assert files(tmp_path / "cold") == files(tmp_path / "parallel")
    # Touched but unchanged bytes: nothing is parsed or written again.
    path = site / "content/posts/post-005.md"
    path.write_text(path.read_text())
    touched = build(site, opts(output=tmp_path / "parallel", jobs=2))
    assert (touched.parsed, touched.rendered, touched.unchanged) == (0, 0, True)
    # A real edit, built from the cache, equals a cold build of the edited site.
    path.write_text(path.read_text().replace("Intro of post 5", "Edited intro"))
    cached = build(site, opts(output=tmp_path / "parallel", jobs=2))
    assert cached.parsed == 1 and 0 < cached.rendered < 20
    build(site, opts(output=tmp_path / "cold2", use_cache=False, jobs=2))
    assert files(tmp_path / "parallel") == files(tmp_path / "cold2")


def test_build__edit_rerenders_only_what_changed(make_site) -> None:
    site = make_site(CONFIG + posts(12))
    build(site, opts())
    path = site / "content/posts/post-000.md"  # the oldest post: on the last index page
    path.write_text(path.read_text().replace("More text", "Changed text below the fold"))
    result = build(site, opts())
    # Below the summary: its own page and the feeds that carry its full text (site Atom, JSON
    # Feed, and the Atom feeds of its two tags); no index, tag or archive page.
    assert result.parsed == 1
    assert result.rendered == 5
    assert "Changed text below the fold" in (site / "_site/posts/post-000/index.html").read_text()


def test_check__writes_nothing_and_reports_template_errors(make_site) -> None:
    site = make_site(CONFIG + posts(2))
    result = check(site, opts())
    assert result.output_dir is None
    assert not (site / "_site").exists() and not (site / ".fedipress").exists()


def test_build__errors_are_collected_and_sorted(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/b.md --
---
title: B
---
x
-- content/posts/a.md --
---
date: 2024-01-01
---
x
-- content/posts/c.md --
---
title: C
date: 2024-01-01
slug: a
---
x
"""
    )
    with pytest.raises(BuildFailed) as info:
        build(site, opts())
    lines = [d.format() for d in info.value.diagnostics]
    assert lines[0].startswith("content/posts/a.md:")
    assert "missing required front matter key 'title'" in lines[0]
    assert lines[1].startswith("content/posts/b.md:")
    assert "missing required front matter key 'date'" in lines[1]
    assert len(lines) == 2  # c.md only clashes once a.md parses


def test_build__base_url_override(make_site) -> None:
    site = make_site(CONFIG + posts(1))
    build(site, opts(base_url="http://127.0.0.1:9999"))
    html = (site / "_site/posts/post-000/index.html").read_text()
    assert 'href="http://127.0.0.1:9999/posts/post-000/"' in html


def test_build__refuses_to_replace_the_site_folder(make_site) -> None:
    site = make_site(CONFIG + posts(1))
    with pytest.raises(Exception, match="replace the site itself"):
        build(site, opts(output=site))
    assert (site / "fedipress.yaml").exists()


def test_build__page_bundle_resources_follow_permalink(make_site) -> None:
    site = make_site(
        CONFIG.replace("timezone", "permalink: /{year}/{slug}/\ntimezone")
        + """
-- content/posts/trip/index.md --
---
title: Trip
date: 2024-03-01
image: cover.png
image_alt: The view
---
![map](maps/map.png)
-- content/posts/trip/cover.png --
c
-- content/posts/trip/maps/map.png --
m
"""
    )
    result = build(site, opts(strict=True))
    out = site / "_site/2024/trip"
    assert (out / "cover.png").exists() and (out / "maps/map.png").exists()
    html = (out / "index.html").read_text()
    assert '<meta property="og:image" content="https://blog.example/2024/trip/cover.png">' in html
    assert result.warnings == ()
    assert os.path.exists(site / "_site/2024/trip/index.html")


def test_build__list_pages_fix_summary_links(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/trip/index.md --
---
title: Trip
date: 2024-03-01
---
A ![view](view.png) and [the other post](../other.md).
-- content/posts/trip/view.png --
v
-- content/posts/other.md --
---
title: Other
date: 2024-03-02
---
Other.
"""
    )
    build(site, opts(strict=True))
    home = (site / "_site/index.html").read_text()
    assert 'src="/posts/trip/view.png"' in home
    assert 'href="/posts/other/"' in home


def test_build__link_to_a_draft_warns(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/a.md --
---
title: A
date: 2024-03-01
---
See [draft](b.md).
-- content/posts/b.md --
---
title: B
date: 2024-03-02
draft: true
---
b
"""
    )
    result = build(site, opts())
    # It names the draft, not a missing post: the file is there, only unpublished.
    assert [w.message for w in result.warnings] == [
        "link to the draft 'b.md', which is not published"
    ]
    assert result.warnings[0].location == SourceLocation("content/posts/a.md", 5)
    assert build(site, opts(drafts=True)).warnings == ()


def test_build__survives_a_cache_cleaned_by_hand(make_site) -> None:
    site = make_site(CONFIG + posts(3))
    build(site, opts())
    (site / ".fedipress/cache/html.sqlite").unlink()
    (site / "templates").mkdir()
    (site / "templates/post.html").write_text(
        '{% extends "base.html" %}{% block main %}<div id="x">{{ post.content | safe }}</div>'
        "{% endblock %}\n"
    )
    result = build(site, opts())
    assert result.parsed == 0  # the posts themselves came from the cache index
    assert "Intro of post 1." in (site / "_site/posts/post-001/index.html").read_text()


def test_build__a_broken_theme_is_caught_after_a_cached_check(make_site) -> None:
    # Given a build that checked the theme and remembered it
    site = make_site(CONFIG + posts(2))
    build(site, opts())
    # When a template changes to extend one that does not exist
    (site / "templates").mkdir()
    (site / "templates/tags.html").write_text("{% extends 'missing.html' %}\n")
    # Then the changed theme is checked again, and the error reported
    with pytest.raises(ThemeError, match=r"template 'missing\.html' not found"):
        build(site, opts())
