"""`fediverse.accounts`: topic accounts, validated with the line of each mistake."""

from __future__ import annotations

import pytest

from fedipress.config import TopicAccount, parse_config
from fedipress.errors import ConfigError

BASE = "title: Blog\nbase_url: https://blog.example\nfediverse:\n  username: blog\n  accounts:\n"


def test_accounts__parsed_with_their_defaults() -> None:
    config = parse_config(
        BASE
        + "    - username: rust\n      tags: [rust]\n"
        + "    - {username: bread, tags: [bread, sourdough], display_name: Bread, avatar: /b.png,\n"
        + "       also_known_as: [https://old.example/users/bread], public_key: keys/b.pem}\n"
    )
    assert config.fediverse is not None
    rust, bread = config.fediverse.accounts
    assert rust == TopicAccount("rust", ("rust",))
    assert rust.public_key_file == "fedipress.rust.pub.pem"
    assert (bread.display_name, bread.avatar, bread.public_key_file) == (
        "Bread",
        "/b.png",
        "keys/b.pem",
    )
    assert bread.also_known_as == ("https://old.example/users/bread",)
    assert config.fediverse.account("bread") is bread
    with pytest.raises(KeyError):
        config.fediverse.account("blog")


@pytest.mark.parametrize(
    ("entries", "message", "line"),
    [
        ("    - username: blog\n      tags: [x]\n", "already used by 'fediverse.username'", 6),
        (
            "    - username: a\n      tags: [x]\n    - username: a\n      tags: [y]\n",
            "already used by 'fediverse.accounts.0.username'",
            8,
        ),
        ("    - username: Rust\n      tags: [x]\n", "lower-case letters", 6),
        ("    - tags: [x]\n", "'fediverse.accounts.0' needs a 'username'", 6),
        ("    - username: r\n", "must list at least one tag", 6),
        ("    - username: r\n      tags: []\n", "must list at least one tag", 7),
        ("    - username: r\n      tags: [x, '']\n", "none of them empty", 7),
        ("    - username: r\n      tags: [x]\n      colour: red\n", "unknown key", 8),
        ("    - rust\n", "must be a mapping", 6),
        ("    - username: r\n      tags: [x]\n      moved_to: '@me@x'\n", "must be a URL", 8),
        (
            "    - username: r\n      tags: [x]\n      also_known_as: ['@me@x']\n",
            "actor URLs, not handles",
            8,
        ),
        (
            "    - username: r\n      tags: [x]\n      public_key: fedipress.pub.pem\n",
            "key file 'fedipress.pub.pem' of 'fediverse.public_key'",
            8,
        ),
    ],
)
def test_accounts__mistakes_name_the_line(entries: str, message: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + entries, "fedipress.yaml")
    assert message in caught.value.message
    assert caught.value.location is not None
    assert (caught.value.location.path, caught.value.location.line) == ("fedipress.yaml", line)
