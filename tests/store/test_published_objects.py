"""What we last published for each post, so publish sends only Creates/Updates/Deletes needed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fedipress.federation.store import PublishedObject, Store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def published(object_id: str, **overrides: object) -> PublishedObject:
    values: dict[str, object] = {
        "object_id": object_id,
        "uid": object_id.rstrip("/").rsplit("/", 1)[-1],
        "version": "sha256:aaa",
        "updated": None,
        "state": "live",
        "first_published_at": NOW,
        "last_delivered_at": None,
    }
    values.update(overrides)
    return PublishedObject(**values)  # type: ignore[arg-type]


def test_put_published__round_trips(store: Store) -> None:
    obj = published("https://blog.example/posts/a/", last_delivered_at=NOW + timedelta(seconds=5))

    store.put_published(obj)

    assert store.get_published(obj.object_id) == obj
    assert store.get_published("https://blog.example/posts/none/") is None


def test_put_published__update_keeps_first_published_at(store: Store) -> None:
    obj = published("https://blog.example/posts/a/")
    store.put_published(obj)
    edited_at = NOW + timedelta(days=2)

    store.put_published(
        replace(obj, version="sha256:bbb", updated=edited_at, first_published_at=edited_at)
    )
    store.put_published(replace(obj, version="sha256:bbb", updated=edited_at, state="deleted"))

    stored = store.get_published(obj.object_id)
    assert stored is not None
    assert (stored.version, stored.updated, stored.state) == ("sha256:bbb", edited_at, "deleted")
    assert stored.first_published_at == NOW


def test_list_published__filters_by_state_in_object_id_order(store: Store) -> None:
    store.put_published(published("https://blog.example/posts/b/"))
    store.put_published(published("https://blog.example/posts/a/"))
    store.put_published(published("https://blog.example/posts/c/", state="deleted"))

    live = store.list_published(state="live")

    assert [o.object_id for o in live] == [
        "https://blog.example/posts/a/",
        "https://blog.example/posts/b/",
    ]
    assert [o.uid for o in store.list_published(state="deleted")] == ["c"]
    assert len(store.list_published()) == 3
    assert [o.uid for o in store.list_published(limit=1, offset=1)] == ["b"]


def test_put_published__keeps_the_object_type(store: Store) -> None:
    # A Delete names the type the object had (formerType): the store remembers it.
    article = published("https://blog.example/posts/long/", type="Article")
    store.put_published(article)
    assert store.get_published(article.object_id) == article
    store.put_published(replace(article, type="Note"))
    stored = store.get_published(article.object_id)
    assert stored is not None and stored.type == "Note"
