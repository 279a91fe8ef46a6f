"""What an author gets wrong, caught: content warnings that stay folded everywhere, typos in
front matter, TOML front matter, summary markers, and warnings that point at the line."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.app.build import BuildOptions, build, check
from fedipress.errors import BuildFailed, SourceLocation

NOW = datetime(2025, 6, 1, tzinfo=UTC)
CONFIG = """
-- fedipress.yaml --
title: Inline Blog
base_url: https://blog.example/
description: A test blog.
"""
FEDI = CONFIG + "fediverse:\n  username: blog\n"
SECRET = "The hidden text about the accident"


def opts(**kw) -> BuildOptions:
    kw.setdefault("now", lambda: NOW)
    kw.setdefault("jobs", 1)
    return BuildOptions(**kw)


def _outputs(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8", errors="replace")
        for p in root.rglob("*")
        if p.is_file()
    }


# --- 1. content warnings -------------------------------------------------------------------


def test_content_warning__the_text_shows_nowhere_but_folded_on_its_page(make_site) -> None:
    site = make_site(
        CONFIG
        + f"""
-- content/posts/cw.md --
---
title: A hard week
date: 2024-05-01
tags: [life]
content_warning: grief, a road accident
---
{SECRET}, first paragraph.

<!-- more -->

More of it.
"""
    )
    build(site, opts())
    out = _outputs(site / "_site")
    leaking = sorted(path for path, text in out.items() if SECRET in text)
    # Only the post's own page has the text, and there inside the folded <details>.
    assert leaking == ["posts/cw/index.html"]
    page = out["posts/cw/index.html"]
    assert page.index('<details class="cw">') < page.index(SECRET)
    for path in ("index.html", "tags/life/index.html", "feed.xml", "feed.json"):
        assert "Content warning: grief, a road accident" in out[path], path
    assert '<meta name="description" content="Content warning: grief, a road accident">' in page
    assert 'property="og:description" content="Content warning: grief' in page
    item = json.loads(out["feed.json"])["items"][0]
    assert item["summary"] == "Content warning: grief, a road accident"
    assert "https://blog.example/posts/cw/" in item["content_html"]


def test_content_warning__the_activitypub_object_keeps_it_folded(make_site) -> None:
    site = make_site(
        FEDI
        + f"""
-- content/posts/cw.md --
---
title: A hard week
date: 2024-05-01
content_warning: grief
---
{SECRET}.
"""
    )
    from fedipress.app.keyfiles import generate_keys
    from fedipress.config import load_config

    generate_keys(site, load_config(site))
    build(site, opts())
    obj = json.loads((site / "_site/ap/posts/cw").read_text())
    assert obj["summary"] == "grief" and obj["sensitive"] is True


# --- 2. typos in front matter --------------------------------------------------------------


TYPOS = (
    CONFIG
    + """
-- content/posts/a.md --
---
title: A
date: 2024-05-01
darft: true
content_warnign: spiders
Tags: [x]
location: Wandlitz
data: 3
---
x
"""
)


def test_front_matter__near_miss_keys_warn_with_did_you_mean(make_site) -> None:
    site = make_site(TYPOS)
    result = check(site, opts())
    found = {(w.location, w.message) for w in result.warnings if "front matter key" in w.message}
    source = "content/posts/a.md"
    assert found == {
        (SourceLocation(source, 4, 1), "unknown front matter key 'darft': did you mean 'draft'?"),
        (
            SourceLocation(source, 5, 1),
            "unknown front matter key 'content_warnign': did you mean 'content_warning'?",
        ),
        (SourceLocation(source, 6, 1), "unknown front matter key 'Tags': did you mean 'tags'?"),
    }
    assert all("params:" in w.hint for w in result.warnings)
    with pytest.raises(BuildFailed) as info:
        check(site, opts(strict=True))
    assert "3 warnings" in str(info.value)


def test_front_matter__typo_warnings_survive_the_build_cache(make_site) -> None:
    site = make_site(TYPOS)
    first = build(site, opts())
    os.utime(site / "fedipress.yaml")  # a rebuild from the cache, the post not re-parsed
    (site / "static").mkdir()
    second = build(site, opts())
    assert second.parsed == 0
    assert [w.message for w in second.warnings] == [w.message for w in first.warnings]
    assert len(second.warnings) == 3


def test_front_matter__params_and_other_own_keys_stay_quiet(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/a.md --
---
title: A
date: 2024-05-01
params:
  mood: calm
location: Wandlitz
---
x
"""
    )
    assert check(site, opts(strict=True)).warnings == ()


@pytest.mark.parametrize(("value", "drafted"), [('"true"', True), ("'False'", False)])
def test_front_matter__quoted_booleans_are_accepted(make_site, value: str, drafted: bool) -> None:
    site = make_site(
        CONFIG
        + f"-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-05-01\ndraft: {value}\n---\nx\n"
    )
    assert check(site, opts()).posts == (0 if drafted else 1)


def test_front_matter__a_bad_boolean_is_explained(make_site) -> None:
    site = make_site(
        CONFIG + "-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-05-01\ndraft: maybe\n---\n"
    )
    with pytest.raises(BuildFailed) as info:
        check(site, opts())
    text = str(info.value)
    assert "content/posts/a.md:4:8: front matter key 'draft' must be true or false" in text
    assert "hint: write 'draft: true' or 'draft: false'" in text


# --- TOML front matter ---------------------------------------------------------------------


def test_toml_front_matter__builds_like_yaml(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/hugo.md --
+++
title = "From Hugo"
date = 2024-05-01T09:30:00+02:00
tags = ["hugo", "toml"]
draft = false

[params]
mood = "calm"
+++
Body from *Hugo*.
"""
    )
    result = build(site, opts())
    assert result.posts == 1 and result.warnings == ()
    page = (site / "_site/posts/hugo/index.html").read_text()
    assert "Body from <em>Hugo</em>." in page and 'href="/tags/toml/"' in page
    assert 'datetime="2024-05-01T09:30:00+02:00"' in page


def test_toml_front_matter__syntax_errors_and_bad_values_name_the_line(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/broken.md --
+++
title = "T"
date = 2024-05-01
tags = [hugo
+++
x
-- content/posts/bad-date.md --
+++
title = "T"
date = "2024-13-01"
+++
x
"""
    )
    with pytest.raises(BuildFailed) as info:
        check(site, opts())
    text = str(info.value)
    assert "content/posts/broken.md:4:9: invalid TOML: Invalid value" in text
    assert "content/posts/bad-date.md:3:8: front matter key 'date' is not a date" in text


def test_toml_front_matter__typos_warn_too(make_site) -> None:
    site = make_site(
        CONFIG
        + '-- content/posts/a.md --\n+++\ntitle = "A"\ndate = 2024-05-01\ndarft = true\n+++\n'
    )
    [warning] = check(site, opts()).warnings
    assert warning.location == SourceLocation("content/posts/a.md", 4, 1)
    assert "did you mean 'draft'" in warning.message


# --- 9. the summary marker -----------------------------------------------------------------


@pytest.mark.parametrize("marker", ["<!-- more -->", "<!--more-->", "<!--  MORE -->"])
def test_more_marker__every_spelling_cuts_the_summary_and_leaves_no_trace(
    make_site, marker: str
) -> None:
    site = make_site(
        FEDI
        + f"""
-- content/posts/a.md --
---
title: A
date: 2024-05-01
---
Intro paragraph.

Second paragraph, still summary.

{marker}

The rest.
"""
    )
    from fedipress.app.keyfiles import generate_keys
    from fedipress.config import load_config

    generate_keys(site, load_config(site))
    build(site, opts())
    out = _outputs(site / "_site")
    home = out["index.html"]
    assert "Second paragraph, still summary." in home and "The rest." not in home
    for path, text in out.items():
        lowered = text.lower().replace(" ", "")
        assert "<!--more-->" not in lowered and "&lt;!--more--&gt;" not in lowered, path
        assert "\\u003c!--more" not in lowered, path
    assert "The rest." in json.loads(out["ap/posts/a"])["content"]


def test_more_marker__inside_a_paragraph_closes_the_summary(make_site) -> None:
    site = make_site(
        CONFIG + "-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-05-01\n---\n"
        "Intro <!--more--> and the rest.\n"
    )
    build(site, opts())
    home = (site / "_site/index.html").read_text()
    assert "<p>Intro</p>" in home and "and the rest" not in home


# --- 12. missing cover images --------------------------------------------------------------


def test_missing_cover_image__warns_at_its_line_and_fails_strict(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/trip/index.md --
---
title: Trip
date: 2024-05-01
image: cover.png
images: [map.png]
---
x
-- content/posts/trip/map.png --
png
-- content/posts/b.md --
---
title: B
date: 2024-05-02
image: /img/nope.jpg
---
y
"""
    )
    result = check(site, opts())
    found = sorted((str(w.location), w.message) for w in result.warnings)
    assert found == [
        (
            "content/posts/b.md:4",
            "image '/img/nope.jpg' does not exist: the page would show a broken image",
        ),
        (
            "content/posts/trip/index.md:4",
            "image 'cover.png' does not exist: the page would show a broken image",
        ),
    ]
    with pytest.raises(BuildFailed):
        check(site, opts(strict=True))
    (site / "content/posts/trip/cover.png").write_text("png")
    (site / "static/img").mkdir(parents=True)
    (site / "static/img/nope.jpg").write_text("jpg")
    assert check(site, opts(strict=True)).warnings == ()


# --- 13. link warnings ---------------------------------------------------------------------


def test_links__broken_ones_give_the_line_and_anchors_are_checked(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/a.md --
---
title: A
date: 2024-05-01
---
## Start

Jump to [start](#start), [nowhere](#nowhere) and [main](#main).

See [B's part](b.md#part), [B's missing part](b.md#gone), [by URL](/posts/b/#gone-too).

And [a missing page](/posts/nope/).
-- content/posts/b.md --
---
title: B
date: 2024-05-02
---
## Part
"""
    )
    result = check(site, opts())
    found = sorted((str(w.location), w.message) for w in result.warnings)
    assert found == [
        ("content/posts/a.md:11", "broken internal link '/posts/nope/'"),
        ("content/posts/a.md:7", "broken link '#nowhere': this page has no anchor '#nowhere'"),
        (
            "content/posts/a.md:9",
            "broken link '/posts/b/#gone-too': 'content/posts/b.md' has no anchor '#gone-too'",
        ),
        (
            "content/posts/a.md:9",
            "broken link 'b.md#gone': 'content/posts/b.md' has no anchor '#gone'",
        ),
    ]


def test_links__a_future_post_is_named_as_such(make_site) -> None:
    site = make_site(
        CONFIG
        + """
-- content/posts/a.md --
---
title: A
date: 2024-05-01
---
Soon: [next](/posts/later/).
-- content/posts/later.md --
---
title: Later
date: 2030-01-01
---
x
"""
    )
    [warning] = check(site, opts()).warnings
    assert "dated in the future" in warning.message and warning.location.line == 5


def test_missing_template__names_the_post_and_line(make_site) -> None:
    site = make_site(
        CONFIG
        + "-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-05-01\ntemplate: fancy.html\n---\n"
    )
    with pytest.raises(BuildFailed) as info:
        build(site, opts())
    assert (
        "content/posts/a.md:4: template 'fancy.html' not found "
        "(asked for by 'template: fancy.html')" in str(info.value)
    )


# --- table of contents ---------------------------------------------------------------------


def test_toc__opt_in_lists_the_headings_and_stays_inside_a_warning(make_site) -> None:
    body = "Intro.\n\n## First part\n\nx\n\n### A detail\n\ny\n\n## Über uns\n\nz\n"
    site = make_site(
        CONFIG
        + f"-- content/posts/long.md --\n---\ntitle: Long\ndate: 2024-05-01\ntoc: true\n---\n{body}"
        + f"-- content/posts/plain.md --\n---\ntitle: Plain\ndate: 2024-05-02\n---\n{body}"
        + "-- content/posts/warned.md --\n---\ntitle: Warned\ndate: 2024-05-03\ntoc: true\n"
        + f"content_warning: grief\n---\n{body}"
    )
    build(site, opts())
    long = (site / "_site/posts/long/index.html").read_text()
    assert '<nav class="toc" aria-labelledby="toc-title">' in long
    links = [
        '<li class="toc-h2"><a href="#first-part">First part</a></li>',
        '<li class="toc-h3"><a href="#a-detail">A detail</a></li>',
        '<li class="toc-h2"><a href="#über-uns">Über uns</a></li>',
    ]
    positions = [long.index(link) for link in links]
    assert positions == sorted(positions) and positions[-1] < long.index('id="first-part"')
    assert 'class="toc"' not in (site / "_site/posts/plain/index.html").read_text()
    warned = (site / "_site/posts/warned/index.html").read_text()
    # the headings say what the warned text is about: they stay inside the fold
    assert warned.index('<details class="cw">') < warned.index('class="toc"')
    assert "First part" not in (site / "_site/index.html").read_text()
