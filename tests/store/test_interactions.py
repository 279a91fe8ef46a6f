"""Likes, boosts and replies to our posts, and reports (flags) about us."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fedipress.federation.store import Flag, Interaction, InteractionCounts, Store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POST = "https://blog.example/posts/hello/"
OTHER_POST = "https://blog.example/posts/second/"
ALICE = "https://a.example/users/alice"
BOB = "https://b.example/users/bob"


def reply(id: str, actor_id: str = ALICE, **overrides: object) -> Interaction:
    values: dict[str, object] = {
        "id": id,
        "kind": "reply",
        "actor_id": actor_id,
        "object_id": POST,
        "content_html": "<p>Nice post</p>",
        "url": id + "/html",
        "in_reply_to": POST,
        "published": NOW,
        "raw_json": '{"type": "Note"}',
    }
    values.update(overrides)
    return Interaction(**values)  # type: ignore[arg-type]


def test_add_interaction__round_trips_a_reply(store: Store) -> None:
    item = reply("https://a.example/notes/1", state="pending", updated=NOW + timedelta(hours=1))

    assert store.add_interaction(item, NOW) is True

    assert store.get_interaction(item.id) == item
    assert store.get_interaction("https://a.example/notes/404") is None


def test_add_interaction__one_like_per_actor_and_post(store: Store) -> None:
    like = Interaction(f"{ALICE}#likes/1", "like", ALICE, POST)

    assert store.add_interaction(like, NOW) is True
    assert store.add_interaction(like, NOW) is False  # same id
    assert store.add_interaction(replace(like, id=f"{ALICE}#likes/2"), NOW) is False  # same actor
    assert store.add_interaction(replace(like, id=f"{ALICE}#likes/3", kind="announce"), NOW)
    assert store.add_interaction(replace(like, id=f"{ALICE}#likes/4", object_id=OTHER_POST), NOW)
    # Replies are not reactions: one actor may reply many times
    assert store.add_interaction(reply("https://a.example/notes/1"), NOW)
    assert store.add_interaction(reply("https://a.example/notes/2"), NOW)

    assert len(store.list_interactions(object_id=POST)) == 4


def test_update_interaction__replaces_an_edited_reply(store: Store) -> None:
    original = reply("https://a.example/notes/1")
    store.add_interaction(original, NOW)
    edited = replace(original, content_html="<p>Great post</p>", updated=NOW + timedelta(hours=2))

    assert store.update_interaction(edited) is True
    assert store.update_interaction(reply("https://a.example/notes/404")) is False

    assert store.get_interaction(original.id) == edited


def test_remove_interactions__by_id_by_reaction_and_by_actor(store: Store) -> None:
    store.add_interaction(Interaction(f"{ALICE}#likes/1", "like", ALICE, POST), NOW)
    store.add_interaction(Interaction(f"{ALICE}#boosts/1", "announce", ALICE, POST), NOW)
    store.add_interaction(reply("https://a.example/notes/1"), NOW)
    store.add_interaction(reply("https://a.example/notes/2"), NOW)
    store.add_interaction(Interaction(f"{BOB}#likes/1", "like", BOB, POST), NOW)

    # Undo{Like} carrying a Like whose id we never saw: match by actor, post and kind
    assert store.remove_interactions_by(ALICE, POST, "like") == 1
    assert store.remove_interaction("https://a.example/notes/1") is True
    assert store.remove_interaction("https://a.example/notes/1") is False
    # Delete{actor}: everything of theirs goes
    assert store.remove_actor_interactions(ALICE) == 2

    assert [i.id for i in store.list_interactions()] == [f"{BOB}#likes/1"]


def test_list_interactions__filters_and_orders_by_published(store: Store) -> None:
    store.add_interaction(
        reply("https://a.example/n/late", published=NOW + timedelta(hours=1)), NOW
    )
    store.add_interaction(
        reply("https://a.example/n/early", published=NOW - timedelta(hours=1)), NOW
    )
    store.add_interaction(reply("https://a.example/n/held", state="pending"), NOW)
    store.add_interaction(reply("https://a.example/n/other", object_id=OTHER_POST), NOW)
    store.add_interaction(Interaction(f"{ALICE}#likes/1", "like", ALICE, POST), NOW)

    approved = store.list_interactions(kind="reply", state="approved", object_id=POST)
    pending = store.list_interactions(state="pending")
    second_page = store.list_interactions(kind="reply", limit=2, offset=2)

    assert [i.id for i in approved] == ["https://a.example/n/early", "https://a.example/n/late"]
    assert [i.id for i in pending] == ["https://a.example/n/held"]
    assert len(second_page) == 2


def test_count_interactions__per_post_and_state(store: Store) -> None:
    store.add_interaction(Interaction(f"{ALICE}#likes/1", "like", ALICE, POST), NOW)
    store.add_interaction(Interaction(f"{BOB}#likes/1", "like", BOB, POST), NOW)
    store.add_interaction(Interaction(f"{BOB}#boosts/1", "announce", BOB, OTHER_POST), NOW)
    store.add_interaction(reply("https://a.example/notes/1"), NOW)
    store.add_interaction(reply("https://a.example/notes/2", state="pending"), NOW)

    assert store.count_interactions() == {
        POST: InteractionCounts(likes=2, announces=0, replies=1),
        OTHER_POST: InteractionCounts(announces=1),
    }
    assert store.count_interactions(state=None)[POST].replies == 2


def test_add_flag__stores_reports_newest_first(store: Store) -> None:
    older = Flag(
        "https://mod.example/flags/1",
        "https://mod.example/actor",
        "spam",
        ("https://blog.example/ap/actor", POST),
        NOW,
        '{"type": "Flag"}',
    )
    newer = Flag(
        "https://mod.example/flags/2", "https://mod.example/actor", None, (), NOW + timedelta(1)
    )

    assert store.add_flag(older) is True
    assert store.add_flag(older) is False
    assert store.add_flag(newer) is True

    assert store.list_flags() == [newer, older]
    assert store.list_flags(limit=1, offset=1) == [older]
