"""rel="me" links of the default theme's follow box: Mastodon verifies a profile field when
the linked page links back with rel="me" (verify_link_service.rb, FEDERATION.md §2.2), so the
blog's pages link to the actor's `url` and to the accounts named in the profile fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from fedipress.app.keyfiles import generate_keys
from fedipress.cli.main import main
from fedipress.config import Author, Config, FediverseConfig, ProfileField, load_config
from fedipress.content.pages import PageInfo, SiteInfo
from fedipress.content.theme import load_theme, make_environment, render_template
from fedipress.documents.activitypub import build_actor

BASE = "https://blog.example/"
ACTOR = "https://blog.example/ap/actor"
FIELDS = (
    ProfileField("Blog", "https://blog.example/"),
    ProfileField("About", "https://blog.example/about/"),
    ProfileField("Code", "https://codeberg.org/mara"),
    ProfileField("Mastodon", " https://social.example/@mara "),
    ProfileField("Town", "Berlin"),
    ProfileField("Not a link", "https://two words.example/"),
    ProfileField("Lookalike", "https://blog.example.evil.test/"),
)


class RelMe(HTMLParser):
    """The hrefs of `a` and `link` elements whose rel contains "me", as Mastodon's XPath
    `//a[contains(concat(" ", normalize-space(@rel), " "), " me ")]|//link[…]` finds them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("a", "link") and "me" in (values.get("rel") or "").split():
            self.hrefs.append(values.get("href") or "")


def _render(tmp_path: Path, fields: tuple[ProfileField, ...]) -> str:
    config = Config.for_test(fediverse=FediverseConfig("blog", fields=fields))
    env = make_environment(load_theme(tmp_path, config), config)
    site = SiteInfo(
        title=config.title,
        description="",
        language="en",
        base_url=config.base_url,
        author=Author("Mara"),
        menu=(),
        params={},
        fediverse=config.fediverse,
        handle="@blog@blog.example",
        actor_url=ACTOR,
        pages=(),
    )
    page = PageInfo("404", "/404.html", "Page not found", BASE, "", noindex=True)
    return render_template(
        env, "partials/follow.html", {"site": site, "config": config, "page": page}
    )


def test_follow_links__links_back_to_the_actors_url_and_id(tmp_path: Path) -> None:
    # Mastodon compares the rel="me" hrefs with the actor's `url`, ignoring case.
    config = Config.for_test(fediverse=FediverseConfig("blog", fields=FIELDS))
    actor = build_actor(
        config,
        "PEM",
        published=datetime(2024, 1, 1, tzinfo=UTC),
        summary_html="",
        avatar_url=None,
        header_url=None,
    )
    hrefs = [h.lower() for h in RelMe(_render(tmp_path, FIELDS)).hrefs]
    assert str(actor["url"]).lower() in hrefs
    assert str(actor["id"]).lower() in hrefs


def test_follow_links__elsewhere_lists_url_fields_on_other_sites(tmp_path: Path) -> None:
    html = _render(tmp_path, FIELDS)
    assert '<h3 id="elsewhere-title" class="elsewhere-title">Elsewhere</h3>' in html
    assert (
        '<li>Code: <a href="https://codeberg.org/mara" rel="me">codeberg.org/mara</a></li>' in html
    )
    # Trimmed, and shown without the scheme.
    assert (
        '<li>Mastodon: <a href="https://social.example/@mara" rel="me">social.example/@mara</a>'
        in html
    )
    assert "https://blog.example.evil.test/" in RelMe(html).hrefs
    # Text, a value with spaces, and the site's own pages are not in the list.
    assert "Town" not in html and "Berlin" not in html
    assert "two words" not in html
    assert "<li>Blog:" not in html and "<li>About:" not in html


def test_follow_links__no_elsewhere_list_without_url_fields(tmp_path: Path) -> None:
    html = _render(tmp_path, (ProfileField("Town", "Berlin"),))
    assert "Elsewhere" not in html
    assert "<ul" not in html
    assert sorted(RelMe(html).hrefs) == [BASE, ACTOR]


def test_follow_links__markup_in_fields_is_escaped(tmp_path: Path) -> None:
    html = _render(tmp_path, (ProfileField("<b>X</b>", 'https://x.example/?a="1"&b=<2>'),))
    assert "<b>X</b>" not in html and "&lt;b&gt;X&lt;/b&gt;" in html
    assert 'href="https://x.example/?a=&#34;1&#34;&amp;b=&lt;2&gt;"' in html


def test_follow_links__built_site_verifies_both_ways(tmp_path: Path) -> None:
    # Given a built blog whose profile links to its own pages and to an account elsewhere
    site = tmp_path / "site"
    (site / "content/posts").mkdir(parents=True)
    (site / "content/pages").mkdir(parents=True)
    (site / "fedipress.yaml").write_text(
        "title: Links\nbase_url: https://Blog.Example/\nfediverse:\n  username: blog\n"
        "  fields:\n    - {name: Blog, value: 'https://blog.example'}\n"
        "    - {name: About, value: https://blog.example/about/}\n"
        "    - {name: Mastodon, value: https://social.example/@mara}\n"
    )
    (site / "content/posts/hello.md").write_text("---\ntitle: Hello\ndate: 2024-05-01\n---\nHi.\n")
    (site / "content/pages/about.md").write_text("---\ntitle: About\n---\nMe.\n")
    generate_keys(site, load_config(site))
    result = CliRunner().invoke(main, ["build", str(site), "--strict"])
    assert result.exit_code == 0, result.output
    out = site / "_site"
    actor = json.loads((out / "ap/actor").read_text())
    pages = {
        "https://blog.example": out / "index.html",
        "https://blog.example/about/": out / "about/index.html",
    }
    # When Mastodon checks each field that points at the blog
    for field in actor["attachment"]:
        href = field["value"].split('href="', 1)[1].split('"', 1)[0]
        if href in pages:
            back = [h.lower() for h in RelMe(pages[href].read_text()).hrefs]
            # Then the page links back to the actor's url
            assert actor["url"].lower() in back, href
    # And the other account finds a rel="me" link to itself on every page
    for page in pages.values():
        assert "https://social.example/@mara" in RelMe(page.read_text()).hrefs
