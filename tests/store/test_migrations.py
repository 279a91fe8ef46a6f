"""Numbered migrations: shipped as package resources, applied once, newer schemas refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from fedipress.errors import StoreError
from fedipress.federation.store.schema import Migration, load_migrations

if TYPE_CHECKING:
    from tests.store.conftest import Backend

TABLES = {
    "followers",
    "remote_keys",
    "remote_actors",
    "seen_activities",
    "blocks",
    "interactions",
    "flags",
    "deliveries",
    "hosts",
    "host_failure_days",
    "published_objects",
    "announcements",
}


def test_load_migrations__numbered_in_order_from_package_resources() -> None:
    migrations = load_migrations()

    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions))  # gaps allowed: numbers are given out per branch
    names = {m.version: m.name for m in migrations}
    assert names[1] == "initial"
    assert names[2] == "channels"
    assert names[4] == "published_object_type"


def test_migration_statements__split_without_comments() -> None:
    migration = Migration(
        7, "x", "-- a; comment\nCREATE TABLE a (x TEXT); -- tail\n\nDROP TABLE b;\n"
    )

    assert migration.statements() == ["CREATE TABLE a (x TEXT)", "DROP TABLE b"]


def test_open_store__applies_each_migration_once(empty_backend: Backend) -> None:
    backend = empty_backend
    first = backend.open()
    first.close()
    second = backend.open()  # re-running 0001 would fail: CREATE TABLE without IF NOT EXISTS

    versions = backend.execute("SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == [m.version for m in load_migrations()]
    assert second.schema_version() == load_migrations()[-1].version


def test_open_store__creates_every_table(empty_backend: Backend) -> None:
    empty_backend.open()

    for table in TABLES:
        assert empty_backend.execute(f"SELECT COUNT(*) FROM {table}") == [(0,)]


def test_open_store__refuses_a_newer_schema(empty_backend: Backend) -> None:
    backend = empty_backend
    backend.open().close()
    backend.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        (9999, "from_the_future", "2030-01-01T00:00:00.000000Z"),
    )

    with pytest.raises(StoreError) as caught:
        backend.open()

    assert "migration 9999" in caught.value.message
    assert "Upgrade fedipress" in caught.value.hint
