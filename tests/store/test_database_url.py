"""FEDIPRESS_DATABASE_URL forms, and opening the default store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import fedipress.federation.store as store_package
from fedipress.errors import StoreError
from fedipress.federation.store import DatabaseUrl, open_store, parse_database_url

SITE = Path("/srv/blog")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, DatabaseUrl("sqlite", "/srv/blog/.fedipress/inbox.db", is_default=True)),
        ("", DatabaseUrl("sqlite", "/srv/blog/.fedipress/inbox.db", is_default=True)),
        (
            "sqlite:////var/lib/fedipress/inbox.db",
            DatabaseUrl("sqlite", "/var/lib/fedipress/inbox.db"),
        ),
        ("sqlite:///data/inbox.db", DatabaseUrl("sqlite", "/srv/blog/data/inbox.db")),
        ("sqlite:inbox.db", DatabaseUrl("sqlite", "/srv/blog/inbox.db")),
        ("sqlite:/abs/inbox.db", DatabaseUrl("sqlite", "/abs/inbox.db")),
        ("sqlite:///my%20blog.db", DatabaseUrl("sqlite", "/srv/blog/my blog.db")),
        ("sqlite:///:memory:", DatabaseUrl("sqlite", ":memory:")),
        ("postgresql://u@db/blog", DatabaseUrl("postgres", "postgresql://u@db/blog")),
        ("postgres://u:pw@db:5433/blog", DatabaseUrl("postgres", "postgres://u:pw@db:5433/blog")),
    ],
)
def test_parse_database_url__accepted_forms(url: str | None, expected: DatabaseUrl) -> None:
    assert parse_database_url(url, SITE) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@db/blog", "unsupported database URL 'mysql://root:***@db/blog'"),
        ("sqlite://host/inbox.db", "names a host"),
        ("sqlite:", "has no file path"),
    ],
)
def test_parse_database_url__refuses_with_a_hint(url: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        parse_database_url(url, SITE)

    assert message in caught.value.message
    assert "sqlite:///relative.db" in caught.value.hint


def test_open_store__default_creates_the_dot_fedipress_folder(tmp_path: Path) -> None:
    store = open_store(None, tmp_path)
    try:
        assert store.mark_seen("https://a.example/1", datetime.now(UTC))
    finally:
        store.close()

    assert (tmp_path / ".fedipress" / "inbox.db").is_file()


def test_open_store__missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_store("sqlite:///no/such/folder/inbox.db", tmp_path)

    assert "cannot open SQLite database" in caught.value.message
    assert caught.value.hint


def test_open_store__not_a_database_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("these are not the tables you are looking for\n" * 100)

    with pytest.raises(StoreError) as caught:
        open_store("sqlite:notes.txt", tmp_path)

    assert "not a database" in caught.value.message


def test_open_store__unreachable_postgres_is_a_store_error(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused fast
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://fedipress:secret@127.0.0.1:9/blog", tmp_path)

    assert "cannot connect to PostgreSQL" in caught.value.message
    assert "secret" not in caught.value.message
    assert "FEDIPRESS_DATABASE_URL" in caught.value.hint


def test_store_package__public_names() -> None:
    assert sorted(store_package.__all__) == [
        "Block",
        "CachedKey",
        "DatabaseUrl",
        "Delivery",
        "Flag",
        "Follower",
        "HostStatus",
        "Interaction",
        "InteractionCounts",
        "PublishedObject",
        "QueueStats",
        "RemoteActor",
        "RemoteKey",
        "Store",
        "open_store",
        "parse_database_url",
    ]
