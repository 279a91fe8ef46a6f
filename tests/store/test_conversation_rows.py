"""What the store keeps for conversations: hidden replies, public or not, depth and content
warning, the profiles (with avatars) of the accounts that interacted, finding a reply by its
web address, forgetting a removed post's interactions, and the migration of older rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fedipress.federation.shown import load_shown
from fedipress.federation.store import Interaction, Store
from fedipress.federation.store.base import ActorProfile
from fedipress.federation.store.schema import load_migrations

if TYPE_CHECKING:
    from tests.store.conftest import Backend

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POST = "https://blog.example/ap/posts/hello"
OTHER = "https://blog.example/ap/posts/other"
ALICE = "https://a.example/users/alice"
BOB = "https://b.example/users/bob"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def reply(id: str, actor: str = ALICE, parent: str = POST, **extra: object) -> Interaction:
    values: dict[str, object] = {
        "id": id,
        "kind": "reply",
        "actor_id": actor,
        "object_id": POST,
        "state": "approved",
        "content_html": "<p>Hi</p>",
        "url": id.replace("/notes/", "/@a/"),
        "in_reply_to": parent,
        "published": NOW,
    }
    values.update(extra)
    return Interaction(**values)  # type: ignore[arg-type]


def test_reply__round_trips_its_new_fields(store: Store) -> None:
    item = reply("https://a.example/notes/1", summary="spoilers", public=False, depth=3)
    store.add_interaction(item, NOW)
    assert store.get_interaction(item.id) == item


def test_hide__keeps_the_reply_and_approve_shows_it_again(store: Store) -> None:
    item = reply("https://a.example/notes/1")
    store.add_interaction(item, NOW)

    assert store.set_interaction_state(item.id, "hidden") is True
    assert store.get_interaction(item.id).state == "hidden"  # type: ignore[union-attr]
    assert [i.id for i in store.list_interactions(state="hidden")] == [item.id]
    assert store.list_interactions(state="approved") == []
    assert store.count_interactions() == {}

    assert store.set_interaction_state(item.id, "approved") is True
    assert store.list_interactions(state="hidden") == []
    assert store.count_interactions()[POST].replies == 1
    assert store.set_interaction_state("https://a.example/notes/404", "hidden") is False


def test_list_interactions__by_actor_and_public(store: Store) -> None:
    store.add_interaction(reply("https://a.example/notes/1"), NOW)
    store.add_interaction(reply("https://a.example/notes/2", public=False), NOW)
    store.add_interaction(reply("https://b.example/notes/3", actor=BOB), NOW)

    assert [i.id for i in store.list_interactions(actor_id=BOB)] == ["https://b.example/notes/3"]
    assert [i.id for i in store.list_interactions(actor_id=ALICE, public=True)] == [
        "https://a.example/notes/1"
    ]
    # a reply that is not public is never counted
    assert store.count_interactions()[POST].replies == 2


def test_find_interaction__by_id_or_by_its_web_address(store: Store) -> None:
    item = reply("https://a.example/notes/1")
    store.add_interaction(item, NOW)

    assert store.find_interaction(item.id) == item
    assert store.find_interaction("https://a.example/@a/1") == item
    assert store.find_interaction("https://a.example/@a/404") is None


def test_remove_object_interactions__forgets_a_removed_posts_likes_boosts_replies(
    store: Store,
) -> None:
    store.add_interaction(reply("https://a.example/notes/1"), NOW)
    store.add_interaction(Interaction(f"{ALICE}#l1", "like", ALICE, POST), NOW)
    store.add_interaction(Interaction(f"{BOB}#b1", "announce", BOB, OTHER), NOW)

    assert store.remove_object_interactions([POST]) == 2

    assert [i.object_id for i in store.list_interactions()] == [OTHER]


def test_profiles__round_trip_with_avatar_and_found_by_its_digest(store: Store) -> None:
    with_avatar = ActorProfile(
        ALICE,
        "Alice",
        "alice@a.example",
        "https://a.example/@alice",
        NOW,
        "https://a.example/a.png",
        "image/png",
        PNG,
    )
    without = ActorProfile(BOB, None, None, BOB, NOW)
    store.put_profile(with_avatar)
    store.put_profile(without)

    assert store.get_profile(ALICE) == with_avatar
    assert store.get_profile(BOB) == without
    assert store.list_profiles([ALICE, BOB, "https://c.example/u/c"]) == {
        ALICE: with_avatar,
        BOB: without,
    }
    assert with_avatar.avatar_digest is not None
    assert store.find_avatar(with_avatar.avatar_digest) == with_avatar
    assert store.find_avatar("0" * 20) is None
    # replaced on a new fetch
    store.put_profile(ActorProfile(ALICE, "Alice 2", None, ALICE, NOW))
    assert store.get_profile(ALICE) == ActorProfile(ALICE, "Alice 2", None, ALICE, NOW)


def test_load_shown__approved_public_unblocked_and_in_context(store: Store) -> None:
    top = reply("https://a.example/notes/1")
    below = reply("https://b.example/notes/2", actor=BOB, parent=top.id, depth=1)
    below_hidden = reply("https://a.example/notes/3", parent=top.id, depth=1, state="hidden")
    orphan = reply("https://a.example/notes/4", parent=below_hidden.id, depth=2)
    private = reply("https://a.example/notes/5", public=False)
    spam = reply("https://spam.example/notes/6", actor="https://x.spam.example/u/s")
    for item in (top, below, below_hidden, orphan, private, spam):
        store.add_interaction(item, NOW)
    store.add_interaction(Interaction(f"{BOB}#like", "like", BOB, POST), NOW)
    store.add_block("domain", "spam.example", NOW)
    store.put_profile(ActorProfile(ALICE, "Alice", None, ALICE, NOW))

    shown = load_shown(store)

    # the hidden reply, the reply below it, the private one and the blocked domain's are out
    assert [i.id for i in shown.interactions] == [top.id, below.id, f"{BOB}#like"]
    assert set(shown.profiles) == {ALICE}
    # a blocked actor vanishes from the counts too
    store.add_block("actor", BOB, NOW)
    assert [i.id for i in load_shown(store).interactions] == [top.id]


def test_migration__older_interactions_get_public_depth_zero_not_hidden(
    empty_backend: Backend,
) -> None:
    backend = empty_backend
    # Given a database at migration 4 (the last before 0005_conversations) with a reply in it
    backend.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    for migration in [m for m in load_migrations() if m.version < 5]:
        for statement in migration.statements():
            backend.execute(statement)
        backend.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            (migration.version, migration.name, "2024-01-01T00:00:00.000000Z"),
        )
    backend.execute(
        "INSERT INTO interactions (id, kind, actor_id, object_id, content_html, url, in_reply_to, "
        "state, published, updated, raw_json, created_at) VALUES (?, 'reply', ?, ?, '<p>old</p>', "
        "NULL, ?, 'approved', NULL, NULL, NULL, '2024-01-01T00:00:00.000000Z')",
        ("https://a.example/notes/old", ALICE, POST, POST),
    )
    # When this fedipress opens it
    store = backend.open()
    # Then the reply is still there, public, at depth 0, shown
    old = store.get_interaction("https://a.example/notes/old")
    assert old is not None
    assert (old.state, old.public, old.depth, old.summary) == ("approved", True, 0, None)
    assert [i.id for i in load_shown(store).interactions] == [old.id]
