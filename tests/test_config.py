from __future__ import annotations

import pytest

from fedipress.config import parse_config
from fedipress.errors import ConfigError

BASE = "title: Blog\nbase_url: https://blog.example\n"


def test_parse_config__defaults_and_normalised_base_url() -> None:
    config = parse_config(BASE)
    assert config.base_url == "https://blog.example/"
    assert config.permalink == "/posts/{slug}/"
    assert config.posts_per_page == 10
    assert config.fediverse is None
    assert config.url("/x/") == "/x/"
    assert config.absolute_url("/x/") == "https://blog.example/x/"


def test_parse_config__base_path() -> None:
    config = parse_config("title: B\nbase_url: https://example.com/blog\n")
    assert config.base_path == "/blog"
    assert config.url("/posts/a/") == "/blog/posts/a/"


def test_parse_config__fediverse_section() -> None:
    config = parse_config(BASE + "fediverse:\n  username: my.blog\n  display_name: Mine\n")
    assert config.fediverse is not None
    assert (config.fediverse.username, config.fediverse.display_name) == ("my.blog", "Mine")


@pytest.mark.parametrize(
    ("extra", "message", "hint", "line"),
    [
        ("titel: x\n", "unknown key 'titel'", "did you mean 'title'?", 3),
        ("author:\n  nmae: x\n", "unknown key 'author.nmae'", "did you mean 'name'?", 4),
        ("posts_per_page: many\n", "'posts_per_page' must be a whole number", "", 3),
        ("posts_per_page: 0\n", "at least 1", "", 3),
        ("timezone: Mars/Olympus\n", "not a known time zone", "IANA", 3),
        ("permalink: /posts/{title}/\n", "unknown placeholder '{title}'", "{slug}", 3),
        ("permalink: posts/{slug}\n", "must start and end with '/'", "", 3),
        (
            "fediverse:\n  username: My Blog\n",
            "'fediverse.username' must be lower-case",
            "Mastodon",
            4,
        ),
        ("fediverse:\n  username: b\n  post_type: Page\n", "must be Note or Article", "", 5),
        (
            "fediverse:\n  username: b\n  also_known_as: ['@me@x.y']\n",
            "actor URLs, not handles",
            "curl",
            5,
        ),
        ("matrix:\n  room: '#b:x.org'\n", "needs 'matrix.homeserver' too", "address", 4),
        ("matrix:\n  homeserver: https://m.x\n", "needs 'matrix.room' too", "", 4),
        ("matrix:\n  homeserver: m.x\n  room: '#b:x'\n", "homeserver's https URL", "", 4),
        ("matrix:\n  homeserver: https://m.x\n  room: blog\n", "room id or alias", "'#'", 5),
        ("matrix:\n  address: mara@x.org\n", "must be a Matrix user id", "@mara", 4),
        ("matrix:\n  adress: '@m:x.org'\n", "unknown key 'matrix.adress'", "'address'", 4),
        ("matrix:\n  edits: sometimes\n", "must be a true or false", "", 4),
        ("analytics:\n  matomo:\n    url: https://s.x/\n", "needs a 'site_id'", "", 4),
        ("analytics:\n  matomo: {url: https://s.x/, site_id: 0}\n", "from 1 (got 0)", "", 4),
        ("analytics:\n  matomo: {url: stats, site_id: 3}\n", "Matomo's http(s) URL", "", 4),
        ("analytics:\n  matomo: {url: https://s.x/, siteid: 3}\n", "unknown key", "site_id", 4),
        ("analytics:\n  plausible: {}\n", "unknown key 'analytics.plausible'", "matomo", 4),
    ],
)
def test_parse_config__errors(extra: str, message: str, hint: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + extra, "site/fedipress.yaml")
    assert message in info.value.message
    assert hint in info.value.hint
    assert info.value.location is not None
    assert info.value.location.path == "site/fedipress.yaml"
    assert info.value.location.line == line


def test_parse_config__missing_title() -> None:
    with pytest.raises(ConfigError, match="missing required key 'title'"):
        parse_config("base_url: https://x.example/\n")


def test_parse_config__bad_base_url() -> None:
    with pytest.raises(ConfigError, match="absolute http"):
        parse_config("title: x\nbase_url: blog.example\n")


def test_parse_config__bad_yaml_has_position() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("title: [x\nbase_url: y\n")
    assert info.value.location is not None and info.value.location.line >= 1


# --- fediverse.moderation --------------------------------------------------------------------

FEDI = "title: T\nbase_url: https://b.example/\nfediverse:\n  username: b\n"


@pytest.mark.parametrize("policy", ["followers", "all", "manual"])
def test_parse_config__moderation_policies(policy: str) -> None:
    config = parse_config(FEDI + f"  moderation: {policy}\n")
    assert config.fediverse is not None and config.fediverse.moderation == policy
    assert config.notes == ()


def test_parse_config__moderation_defaults_to_followers() -> None:
    config = parse_config("title: T\nbase_url: https://b.example/\nfediverse: {username: b}\n")
    assert config.fediverse is not None and config.fediverse.moderation == "followers"


def test_parse_config__unknown_moderation_names_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            FEDI + "  moderation: some\n",
            "f.yaml",
        )
    assert "'fediverse.moderation' must be followers, all or manual" in caught.value.message
    assert str(caught.value.location) == "f.yaml:5:15"


@pytest.mark.parametrize(("legacy", "policy"), [("true", "all"), ("false", "manual")])
def test_parse_config__approve_replies_still_works_with_a_hint(legacy: str, policy: str) -> None:
    config = parse_config(
        FEDI + f"  approve_replies: {legacy}\n",
        "f.yaml",
    )
    assert config.fediverse is not None and config.fediverse.moderation == policy
    (note,) = config.notes
    assert (
        note.severity == "warning" and "'fediverse.approve_replies' is deprecated" in note.message
    )
    assert f"moderation: {policy}" in note.hint
    assert str(note.location) == "f.yaml:5:3"


def test_parse_config__approve_replies_and_moderation_together_refused() -> None:
    with pytest.raises(ConfigError, match="both set"):
        parse_config(
            "title: T\nbase_url: https://b.example/\nfediverse:\n  username: b\n"
            "  moderation: all\n  approve_replies: true\n"
        )


def test_parse_config__interactions_from_must_be_a_url() -> None:
    with pytest.raises(ConfigError, match="interactions_from"):
        parse_config(
            "title: T\nbase_url: https://b.example/\nfediverse:\n  username: b\n"
            "  interactions_from: inbox.example\n"
        )


def test_parse_config__matrix_and_analytics_absent_by_default() -> None:
    config = parse_config(BASE)
    assert config.matrix is None
    assert config.analytics.matomo is None


def test_parse_config__matrix_section() -> None:
    config = parse_config(
        BASE + "matrix:\n  homeserver: https://matrix.example.org/\n"
        "  room: '!AbC:example.org'\n  removals: false\n  address: '@mara:example.org'\n"
    )
    assert config.matrix is not None
    assert config.matrix.homeserver == "https://matrix.example.org"
    assert (config.matrix.room, config.matrix.edits, config.matrix.removals) == (
        "!AbC:example.org",
        True,
        False,
    )
    assert config.matrix.announces and config.matrix.address == "@mara:example.org"


def test_parse_config__matrix_address_alone_announces_nothing() -> None:
    config = parse_config(BASE + "matrix: {address: '@mara:example.org'}\n")
    assert config.matrix is not None and not config.matrix.announces


def test_parse_config__matomo() -> None:
    config = parse_config(
        BASE + "analytics:\n  matomo: {url: 'https://stats.example.org/m', site_id: 3}\n"
    )
    assert config.analytics.matomo is not None
    assert config.analytics.matomo.url == "https://stats.example.org/m/"
    assert config.analytics.matomo.site_id == 3
