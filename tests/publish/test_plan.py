"""plan_publish on values: what a publish sends for new, edited, renamed and removed posts
(FEDERATION.md §5.1, §5.5, §5.6), and the `updated` an Update carries. Pure: no store, no clock."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fedipress.config import Config, FediverseConfig
from fedipress.documents.urls import Urls
from fedipress.federation.publish_plan import (
    LiveObject,
    Planned,
    edit_time,
    plan_publish,
    version_of,
)
from fedipress.federation.store.base import PublishedObject

CONFIG = Config.for_test(fediverse=FediverseConfig(username="blog"))
URLS = Urls(CONFIG)
ACTOR = "https://blog.example/ap/actor"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
NOW = datetime(2026, 3, 10, 12, 0, 30, 250_000, tzinfo=UTC)


def note(uid: str, text: str = "Hello.", day: int = 1, **extra: Any) -> LiveObject:
    """A post object as a build serves it at /ap/posts/<uid>."""
    object_id = URLS.post(uid)
    document: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/activitystreams"],
        "id": object_id,
        "type": "Note",
        "attributedTo": ACTOR,
        "to": [PUBLIC],
        "cc": [URLS.followers()],
        "published": f"2026-01-{day:02d}T00:00:00Z",
        "url": f"https://blog.example/posts/{uid}/",
        "content": f"<p>{text}</p>",
    }
    document.update(extra)
    return LiveObject(object_id, uid, {k: v for k, v in document.items() if v is not None})


def sent(obj: LiveObject, **changes: Any) -> PublishedObject:
    """The record of `obj` as followers have it (Created at NOW - 1 day, unless changed)."""
    values: dict[str, Any] = {
        "object_id": obj.id,
        "uid": obj.uid,
        "version": obj.version,
        "updated": None,
        "state": "live",
        "first_published_at": NOW - timedelta(days=1),
        "last_delivered_at": NOW - timedelta(days=1),
    }
    values.update(changes)
    return PublishedObject(**values)


def known(*records: PublishedObject) -> dict[str, PublishedObject]:
    return {record.object_id: record for record in records}


def plan(
    live: Sequence[LiveObject],
    records: Mapping[str, PublishedObject],
    now: datetime = NOW,
    backfill: int = 0,
) -> list[Planned]:
    return plan_publish(CONFIG, live, records, now, backfill=backfill)


def applied(records: Mapping[str, PublishedObject], plans: Sequence[Planned]):
    """The record after a publish stored the plans' rows (what queue_changes does)."""
    return {**records, **{p.object_id: p.record for p in plans}}


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- new, unchanged ---------------------------------------------------------------------------


def test_plan_publish__new_post_is_a_create_embedding_the_object() -> None:
    # Given followers who have `old`, and a site that now also serves `new`
    old, new = note("old", day=1), note("new", "Brand new.", day=2)
    # When the plan is made
    (change,) = plan([old, new], known(sent(old)))
    # Then `new` is Created, once, with a stable id derived from the object
    assert (change.change, change.object_id) == ("create", new.id)
    activity = change.activity
    assert activity is not None
    assert activity["id"] == new.id + "#create"
    assert (activity["type"], activity["actor"]) == ("Create", ACTOR)
    assert activity["object"]["content"] == "<p>Brand new.</p>"
    assert activity["object"]["id"] == new.id
    assert "@context" not in activity["object"]  # the activity's context covers it
    assert activity["to"] == [PUBLIC] and activity["cc"] == [URLS.followers()]
    # and the record remembers the version sent, live, delivered now
    record = change.record
    assert (record.version, record.state, record.last_delivered_at) == (
        new.version,
        "live",
        NOW,
    )


def test_plan_publish__unchanged_posts_send_nothing() -> None:
    a, b = note("a", day=1), note("b", day=2)
    assert plan([a, b], known(sent(a), sent(b))) == []


def test_plan_publish__a_new_updated_alone_is_no_edit() -> None:
    # Given a post whose only change is its `updated` (which publishing itself sets)
    post = note("a")
    bumped = note("a", updated="2026-02-01T00:00:00Z")
    # Then the version is the same and nothing is sent
    assert version_of(bumped.document) == post.version
    assert plan([bumped], known(sent(post))) == []


def test_plan_publish__the_same_activity_twice_has_the_same_id() -> None:
    # Given the same change planned from the same record twice (a retried publish)
    old, new = note("old", day=1), note("new", day=2)
    first = plan([old, new], known(sent(old)))
    again = plan([old, new], known(sent(old)), now=NOW + timedelta(minutes=5))
    # Then both plans carry one activity id: receivers de-duplicate the retry
    assert [p.activity["id"] for p in first if p.activity] == [
        p.activity["id"] for p in again if p.activity
    ]


# --- edits ------------------------------------------------------------------------------------


def test_plan_publish__changed_post_is_an_update_with_a_version_id() -> None:
    # Given followers who have the first text
    before = note("a", "First text.")
    after = note("a", "Second text.")
    # When the text changed
    (change,) = plan([after], known(sent(before, updated=NOW - timedelta(hours=3))))
    # Then an Update embeds the whole new object, under an id made of object + version
    assert change.change == "update"
    activity = change.activity
    assert activity is not None
    assert activity["id"] == f"{after.id}#update-{before.version[:8]}-{after.version}"
    assert activity["type"] == "Update"
    assert activity["object"]["content"] == "<p>Second text.</p>"
    assert activity["object"]["id"] == after.id  # the id never changes (FEDERATION.md §5.5)
    assert change.record.version == after.version != before.version


@pytest.mark.parametrize(
    ("own_updated", "expected"),
    [
        (None, NOW.replace(microsecond=0)),  # no `updated`: now
        ("2026-03-01T00:00:00Z", NOW.replace(microsecond=0)),  # older than the last sent
        ("2026-03-10T08:00:00Z", NOW.replace(microsecond=0)),  # equal to the last sent
        ("2026-03-10T11:00:00Z", datetime(2026, 3, 10, 11, tzinfo=UTC)),  # newer: its own
    ],
)
def test_plan_publish__update_carries_a_strictly_newer_updated(
    own_updated: str | None, expected: datetime
) -> None:
    # Given followers whose copy was last updated at 08:00 (Mastodon keeps the old text
    # unless the Update's `updated` is later, FEDERATION.md §5.5)
    last_sent = datetime(2026, 3, 10, 8, tzinfo=UTC)
    before = note("a", "Old.")
    after = note("a", "New.", updated=own_updated)
    # When the text changed
    (change,) = plan([after], known(sent(before, updated=last_sent)))
    # Then the Update's `updated` is later than what followers have
    assert change.activity is not None
    updated = parse(change.activity["object"]["updated"])
    assert updated > last_sent
    assert updated == expected
    assert change.activity["published"] == change.activity["object"]["updated"]
    # and the record keeps it, so the next edit goes later still
    assert change.record.updated == expected


def test_plan_publish__update_never_older_than_publication() -> None:
    # Given a post never edited (no `updated` in the record), published "in the future"
    # compared to a skewed clock
    before = note("a", "Old.", day=20)
    after = note("a", "New.", day=20)
    skewed_now = datetime(2026, 1, 5, tzinfo=UTC)
    (change,) = plan([after], known(sent(before)), now=skewed_now)
    # Then `updated` is still after `published`, which Mastodon needs to see an edit
    assert change.activity is not None
    assert parse(change.activity["object"]["updated"]) > datetime(2026, 1, 20, tzinfo=UTC)


def test_plan_publish__two_edits_in_one_second_still_increase() -> None:
    # Given an edit published at NOW
    v1, v2, v3 = note("a", "One."), note("a", "Two."), note("a", "Three.")
    (first,) = plan([v2], known(sent(v1, updated=NOW - timedelta(hours=1))))
    # When another edit is published in the same second
    (second,) = plan([v3], applied(known(sent(v1)), [first]), now=NOW + timedelta(milliseconds=1))
    # Then its `updated` is still strictly later than the first one's
    assert first.activity is not None and second.activity is not None
    one = parse(first.activity["object"]["updated"])
    two = parse(second.activity["object"]["updated"])
    assert two > one
    assert second.activity["id"] != first.activity["id"]


def test_plan_publish__renamed_with_kept_id_is_an_update() -> None:
    # Given a post renamed (new slug, new url) with `id:` keeping its object id
    before = note("hello", "Same words.")
    renamed = note("hello", "Same words.", url="https://blog.example/posts/hello-world/")
    # When the plan is made
    (change,) = plan([renamed], known(sent(before)))
    # Then it is the same post, edited: an Update to the same object id with the new url,
    # no Delete and no Create (a new id would make a second post, FEDERATION.md §5.5)
    assert (change.change, change.object_id) == ("update", before.id)
    assert change.activity is not None
    assert change.activity["object"]["url"] == "https://blog.example/posts/hello-world/"


def test_edit_time__rules() -> None:
    last = datetime(2026, 3, 10, 8, tzinfo=UTC)
    now = datetime(2026, 3, 10, 9, 0, 0, 700_000, tzinfo=UTC)
    assert edit_time(None, last, now) == now.replace(microsecond=0)
    assert edit_time(last + timedelta(minutes=5), last, now) == last + timedelta(minutes=5)
    assert edit_time(last, last, now) == now.replace(microsecond=0)
    # a clock behind the last sent time: one second after it, never equal or before
    assert edit_time(None, last, last - timedelta(hours=2)) == last + timedelta(seconds=1)
    assert edit_time(None, None, now) == now.replace(microsecond=0)


# --- deletes ----------------------------------------------------------------------------------


def test_plan_publish__removed_post_is_a_delete_with_a_tombstone() -> None:
    # Given followers who have `a` and `b`, and a site without `b`
    a, b = note("a", day=1), note("b", day=2)
    (change,) = plan([a], known(sent(a), sent(b)))
    # Then `b` is Deleted with a Tombstone, the shape Mastodon sends (FEDERATION.md §5.6)
    assert (change.change, change.object_id) == ("delete", b.id)
    activity = change.activity
    assert activity is not None
    assert re.fullmatch(re.escape(b.id) + r"#delete-[0-9a-f]{8}", activity["id"])
    assert (activity["type"], activity["actor"]) == ("Delete", ACTOR)
    assert activity["object"]["id"] == b.id
    assert activity["object"]["type"] == "Tombstone"
    assert PUBLIC in activity["to"]
    # and the record says deleted, keeping when it was first published
    assert change.record.state == "deleted"
    assert change.record.first_published_at == NOW - timedelta(days=1)


def test_plan_publish__deleting_an_article_says_article() -> None:
    # Given an Article that followers have (Created through the plan, so its row holds the type)
    article, other = note("long", type="Article", name="A long read"), note("other")
    (create,) = plan([article, other], known(sent(other)))
    records = applied(known(sent(other)), [create])
    assert records[article.id].type == "Article"
    # When it is removed, the Tombstone names its real type, not Note
    (delete,) = plan([other], records)
    assert delete.activity is not None
    assert delete.activity["object"]["formerType"] == "Article"
    assert delete.record.type == "Article"


def test_plan_publish__a_deleted_post_is_deleted_once() -> None:
    a = note("a")
    (delete,) = plan([], known(sent(a)))
    assert plan([], applied(known(sent(a)), [delete])) == []


def test_plan_publish__a_post_back_after_a_delete_is_created_again() -> None:
    # Given a post that was deleted
    post = note("a", "Back again.")
    (delete,) = plan([], known(sent(post)))
    records = applied(known(sent(post)), [delete])
    # When it appears on the site again
    (change,) = plan([post], records, now=NOW + timedelta(hours=1))
    # Then it is Created again, under an id not used by the first Create (receivers and the
    # queue drop a repeated id)
    assert (change.change, change.record.state) == ("create", "live")
    assert change.activity is not None
    assert change.activity["type"] == "Create"
    assert change.activity["id"] != post.id + "#create"
    assert not change.activity["id"].startswith(post.id + "#delete")
    assert change.activity["id"].startswith(post.id + "#create")
    assert change.activity["object"]["content"] == "<p>Back again.</p>"


# --- first publish and backfill ---------------------------------------------------------------


def test_plan_publish__first_publish_records_the_back_catalogue() -> None:
    # Given a site with three posts that was never published to followers
    posts = [note("a", day=1), note("b", day=2), note("c", day=3)]
    # When it is published for the first time
    plans = plan(posts, {})
    # Then every post is recorded as delivered, and nothing is sent
    assert [(p.change, p.object_id, p.activity) for p in plans] == [
        ("record", post.id, None) for post in posts
    ]
    assert {p.record.state for p in plans} == {"live"}
    # and a later new post is sent, the others not again
    later = note("d", "Later.", day=4)
    (change,) = plan([*posts, later], applied({}, plans))
    assert (change.change, change.object_id) == ("create", later.id)


def test_plan_publish__backfill_sends_the_newest_n() -> None:
    posts = [note("a", day=3), note("b", day=1), note("c", day=4), note("d", day=2)]
    plans = plan(posts, {}, backfill=2)
    # The two newest (c, a) are Created, oldest first (arrival order); b and d recorded
    assert [(p.change, p.object_id) for p in plans] == [
        ("record", URLS.post("b")),
        ("record", URLS.post("d")),
        ("create", URLS.post("a")),
        ("create", URLS.post("c")),
    ]
    # and backfill only applies to a first publish
    records = applied({}, plans)
    assert plan([*posts, note("e", day=5)], records, backfill=3)[0].object_id == URLS.post("e")
    assert len(plan([*posts, note("e", day=5)], records, backfill=3)) == 1


def test_plan_publish__backfill_larger_than_the_site_sends_everything() -> None:
    posts = [note("a", day=1), note("b", day=2)]
    assert [p.change for p in plan(posts, {}, backfill=10)] == ["create", "create"]


def test_plan_publish__an_object_without_published_sorts_first() -> None:
    # Given a foreign outbox item without `published` beside dated ones
    posts = [note("a", day=2), note("b", published=None)]
    plans = plan(posts, {}, backfill=1)
    # Then planning works, and the dated post counts as the newest
    assert [(p.change, p.object_id) for p in plans] == [
        ("record", URLS.post("b")),
        ("create", URLS.post("a")),
    ]


# --- idempotence ------------------------------------------------------------------------------


def test_plan_publish__on_its_own_output_plans_nothing() -> None:
    # Given a publish with every kind of change
    a, b, c = note("a", day=1), note("b", day=2), note("c", day=3)
    records = known(sent(a), sent(b))
    live = [note("a", "Edited.", day=1), c]  # a edited, b removed, c new
    plans = plan(live, records)
    assert sorted(p.change for p in plans) == ["create", "delete", "update"]
    # When the same site is planned again against the stored result
    again = plan(live, applied(records, plans), now=NOW + timedelta(minutes=1))
    # Then nothing is sent twice
    assert again == []


def test_plan_publish__editing_back_to_earlier_text_gets_a_new_id() -> None:
    # Given a post edited A -> B -> C, each Update sent
    a, b, c = note("p", "A."), note("p", "B."), note("p", "C.")
    records = known(sent(a))
    ids = []
    for version in (b, c, b):
        (change,) = plan([version], records)
        assert change.activity is not None
        ids.append(change.activity["id"])
        records = applied(records, [change])
    # Then the edit back to B is an Update of its own, not a repeat the queue would drop
    assert len(set(ids)) == 3


def test_plan_publish__deleted_restored_and_deleted_again_gets_new_ids() -> None:
    post = note("p", "Here.")
    records = known(sent(post))
    ids = []
    for site in ([], [post], []):
        (change,) = plan(site, records, now=NOW + timedelta(minutes=len(ids)))
        assert change.activity is not None
        ids.append(change.activity["id"])
        records = applied(records, [change])
    assert len(set(ids)) == 3
    assert ids[0].startswith(post.id + "#delete") and ids[2].startswith(post.id + "#delete")
