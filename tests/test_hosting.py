"""Host rules: Netlify-style pattern matching, rule order, and the `_headers` / `_redirects`
files. Pure values, except one build that checks the files land in the output."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress import app
from fedipress.app.host_files import HostFiles
from fedipress.config import Config, load_config
from fedipress.content.extension import BuildContext
from fedipress.content.site import build_site
from fedipress.hosting import (
    HeaderRule,
    RedirectRule,
    header_rules,
    headers_for,
    match_pattern,
    match_redirect,
    media_type,
    redirect_rules,
    render_headers_file,
    render_redirects_file,
    response_headers,
)

CONFIG = Config.for_test()


# --- patterns ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/feed.xml", "/feed.xml", {}),
        ("/feed.xml", "/feed.xml/", {}),  # a trailing slash is optional
        ("/feed.xml", "/feed.xmlx", None),
        ("/feed.xml", "/feedxxml", None),  # '.' is literal
        ("/about/", "/about", {}),
        ("/", "/", {}),
        ("/", "/about/", None),
        ("/*", "/", {"splat": ""}),
        ("/*", "/posts/hello/", {"splat": "posts/hello/"}),
        ("/css/*", "/css/style.css", {"splat": "style.css"}),
        ("/css/*", "/css/a/b.css", {"splat": "a/b.css"}),
        ("/css/*", "/css", {}),  # a standalone splat may match nothing, as on Netlify
        ("/css/*", "/cssx/style.css", None),
        ("/CSS/*", "/css/style.css", {"splat": "style.css"}),  # case does not matter
        ("/tags/:tag/feed.xml", "/tags/python/feed.xml", {"tag": "python"}),
        ("/tags/:tag/feed.xml", "/tags/a/b/feed.xml", None),  # one segment only
        ("/tags/:tag/feed.xml", "/tags//feed.xml", None),
        ("/:year/:slug/", "/2024/hello/", {"year": "2024", "slug": "hello"}),
        ("/img/*.png", "/img/cat.png", {}),  # '*' inside a segment
        ("/img/*.png", "/img/cat.jpg", None),
    ],
)
def test_match_pattern__netlify_rules(
    pattern: str, path: str, expected: dict[str, str] | None
) -> None:
    assert match_pattern(pattern, path) == expected


@pytest.mark.parametrize("pattern", ["feed.xml", "/a b", "/tags/:1/", "/tags/:/", ""])
def test_header_rule__rejects_bad_pattern(pattern: str) -> None:
    with pytest.raises(ValueError):
        HeaderRule(pattern, (("X-A", "1"),))


@pytest.mark.parametrize(("name", "value"), [("X A", "1"), ("X-A", "1\r\nX-B: 2"), ("", "1")])
def test_header_rule__rejects_bad_header(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        HeaderRule("/*", ((name, value),))


# --- headers_for ---------------------------------------------------------------------------


def test_headers_for__every_matching_rule_in_order() -> None:
    rules = [
        HeaderRule("/*", (("X-A", "all"),)),
        HeaderRule("/posts/*", (("X-B", "posts"),)),
        HeaderRule("/pages/*", (("X-C", "pages"),)),
        HeaderRule("/posts/:slug/", (("X-D", "one post"),)),
    ]
    assert headers_for("/posts/hello/", rules) == [
        ("X-A", "all"),
        ("X-B", "posts"),
        ("X-D", "one post"),
    ]
    assert headers_for("/pages/about/", rules) == [("X-A", "all"), ("X-C", "pages")]


def test_headers_for__later_rule_replaces_the_same_header() -> None:
    rules = [
        HeaderRule("/*", (("Cache-Control", "no-cache"), ("X-A", "1"))),
        HeaderRule("/css/*", (("cache-control", "max-age=60"),)),
    ]
    # The later rule's value (and spelling) wins, in the place the header first took.
    assert headers_for("/css/site.css", rules) == [("cache-control", "max-age=60"), ("X-A", "1")]
    assert headers_for("/index.html", rules) == [("Cache-Control", "no-cache"), ("X-A", "1")]


def test_headers_for__a_header_twice_in_one_rule_is_joined() -> None:
    rules = [HeaderRule("/*", (("Vary", "Accept"), ("Vary", "Origin")))]
    assert headers_for("/x", rules) == [("Vary", "Accept, Origin")]


def test_headers_for__no_rule_matches() -> None:
    assert headers_for("/x", [HeaderRule("/y", (("X-A", "1"),))]) == []


# --- the site's rules ------------------------------------------------------------------------

SAMPLE_PATHS = [
    "/",
    "/posts/hello/",
    "/css/style.css",
    "/js/follow.js",
    "/feed.xml",
    "/feed.json",
    "/tags/python/feed.xml",
    "/tags/python/",
    "/404.html",
    "/favicon.svg",
]


def test_header_rules__every_path_gets_the_security_headers() -> None:
    rules = header_rules(CONFIG)
    for path in SAMPLE_PATHS:
        headers = dict(headers_for(path, rules))
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path


def test_header_rules__never_set_one_header_twice_for_a_path() -> None:
    # Netlify keeps the last value, Cloudflare Pages joins them: only unique names mean the
    # same thing on both hosts.
    rules = header_rules(CONFIG)
    for path in SAMPLE_PATHS:
        names = [
            name.lower()
            for rule in rules
            if match_pattern(rule.pattern, path) is not None
            for name, _ in rule.headers
        ]
        assert len(names) == len(set(names)), path


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/feed.xml", "application/atom+xml; charset=utf-8"),
        ("/tags/python/feed.xml", "application/atom+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json; charset=utf-8"),
    ],
)
def test_header_rules__feeds_have_their_type_and_cors(path: str, content_type: str) -> None:
    headers = dict(headers_for(path, header_rules(CONFIG)))
    assert headers["Content-Type"] == content_type
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_header_rules__assets_are_cached_pages_are_not() -> None:
    rules = header_rules(CONFIG)
    assert "max-age" in dict(headers_for("/css/style.css", rules))["Cache-Control"]
    assert "max-age" in dict(headers_for("/js/follow.js", rules))["Cache-Control"]
    assert "Cache-Control" not in dict(headers_for("/posts/hello/", rules))
    assert "Access-Control-Allow-Origin" not in dict(headers_for("/posts/hello/", rules))


def test_redirect_rules__none_yet() -> None:
    assert redirect_rules(CONFIG) == []


# --- media types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("css/style.css", "text/css; charset=utf-8"),
        ("js/follow.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
        ("PHOTO.JPG", "image/jpeg"),
        ("sitemap.xml", "application/xml"),
        ("robots.txt", "text/plain; charset=utf-8"),
        (".well-known/webfinger", "application/octet-stream"),
        ("archive.tar.unknown", "application/octet-stream"),
    ],
)
def test_media_type__from_the_extension(name: str, expected: str) -> None:
    assert media_type(name) == expected


def test_response_headers__a_rule_content_type_wins() -> None:
    rules = header_rules(CONFIG)
    feed = dict(response_headers("/feed.xml", "feed.xml", rules))
    assert feed["Content-Type"] == "application/atom+xml; charset=utf-8"
    page = response_headers("/posts/hello/", "index.html", rules)
    assert [v for k, v in page if k == "Content-Type"] == ["text/html; charset=utf-8"]


# --- redirects -------------------------------------------------------------------------------

REDIRECTS = [
    RedirectRule("/ap/inbox", "https://fn.example/inbox", 200, force=True),
    RedirectRule("/old/*", "/posts/:splat", 301),
    RedirectRule("/:year/:month/:slug/", "/posts/:slug/?from=:year", 308),
    RedirectRule("/old/special/", "/never/", 302),
]


def test_match_redirect__splat_and_placeholders_fill_the_target() -> None:
    assert match_redirect("/old/a/b/", REDIRECTS, False) == (REDIRECTS[1], "/posts/a/b/")
    assert match_redirect("/2024/05/hello/", REDIRECTS, False) == (
        REDIRECTS[2],
        "/posts/hello/?from=2024",
    )


def test_match_redirect__first_match_wins() -> None:
    assert match_redirect("/old/special/", REDIRECTS, False) == (REDIRECTS[1], "/posts/special/")


def test_match_redirect__an_existing_file_shadows_unforced_rules() -> None:
    assert match_redirect("/old/a/", REDIRECTS, file_exists=True) is None
    assert match_redirect("/ap/inbox", REDIRECTS, file_exists=True) == (
        REDIRECTS[0],
        "https://fn.example/inbox",
    )


def test_match_redirect__no_match() -> None:
    assert match_redirect("/posts/hello/", REDIRECTS, False) is None


@pytest.mark.parametrize(("status", "target"), [(418, "/x"), (301, ""), (301, "/a b")])
def test_redirect_rule__rejects_bad_values(status: int, target: str) -> None:
    with pytest.raises(ValueError):
        RedirectRule("/from", target, status)


# --- files -----------------------------------------------------------------------------------


def _parse_headers_file(text: str) -> list[HeaderRule]:
    """Read `_headers` back the way Netlify and Cloudflare document it."""
    rules: list[tuple[str, list[tuple[str, str]]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            rules.append((line.strip(), []))
        else:
            name, _, value = line.strip().partition(":")
            rules[-1][1].append((name.strip(), value.strip()))
    return [HeaderRule(pattern, tuple(headers)) for pattern, headers in rules]


def test_render_headers_file__netlify_and_cloudflare_syntax() -> None:
    rules = [
        HeaderRule("/*", (("X-Content-Type-Options", "nosniff"),)),
        HeaderRule("/feed.xml", (("Content-Type", "application/atom+xml"), ("X-A", "1"))),
    ]
    text = render_headers_file(rules)
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == [
        "",
        "/*",
        "  X-Content-Type-Options: nosniff",
        "",
        "/feed.xml",
        "  Content-Type: application/atom+xml",
        "  X-A: 1",
    ]


def test_render_headers_file__reads_back_as_the_same_rules() -> None:
    rules = header_rules(CONFIG)
    assert _parse_headers_file(render_headers_file(rules)) == rules


def test_render_redirects_file__status_and_force() -> None:
    text = render_redirects_file(REDIRECTS[:2])
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["/ap/inbox https://fn.example/inbox 200!", "/old/* /posts/:splat 301"]


def test_render_redirects_file__empty_is_only_a_comment() -> None:
    assert all(line.startswith("#") for line in render_redirects_file([]).splitlines())


NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_host_files__outputs_both_files() -> None:
    site, _ = build_site(CONFIG, [], datetime(2024, 1, 1, tzinfo=UTC))

    def context(key: str, redirects: list[RedirectRule] | None = None) -> BuildContext:
        return BuildContext(site, key, lambda p: p, lambda p: "", NOW, redirects=redirects or [])

    outputs = {o.path: o for o in HostFiles().outputs(context("key-1"))}
    assert set(outputs) == {"_headers", "_redirects"}
    headers = outputs["_headers"]
    assert headers.render is not None
    assert headers.render().decode() == render_headers_file(header_rules(CONFIG))
    again = {o.path: o for o in HostFiles().outputs(context("key-2"))}
    assert again["_headers"].key != headers.key  # the build key is part of the output key
    assert HostFiles().page_hook(site) is None
    gone = RedirectRule("/ap/posts/old", "/ap/tombstones/old", 410)
    with_rule = {o.path: o for o in HostFiles().outputs(context("key-1", [gone]))}
    assert (
        with_rule["_redirects"].render().decode().endswith("/ap/posts/old /ap/tombstones/old 410\n")
    )
    assert with_rule["_redirects"].key != outputs["_redirects"].key


def test_build__writes_the_host_files(make_site) -> None:
    site_dir: Path = make_site(
        """
        -- fedipress.yaml --
        title: Hosted
        base_url: https://blog.example/
        -- content/posts/hello.md --
        ---
        title: Hello
        date: 2024-05-01
        ---
        Hi.
        """
    )
    result = app.build(site_dir, app.BuildOptions(jobs=1))
    assert result.output_dir is not None
    config = load_config(site_dir)
    written = (result.output_dir / "_headers").read_text(encoding="utf-8")
    assert written == render_headers_file(header_rules(config))
    assert (result.output_dir / "_redirects").read_text(encoding="utf-8") == (
        render_redirects_file(redirect_rules(config))
    )
