"""What a publish plans for the site's accounts, on values (FEDERATION.md §13, §4.6, §8.3):
boosts and their undoing, profile updates once per change, a rotation pinned to the old
key, a move sent once. Pure: no store, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fedipress.config import Config, FediverseConfig, TopicAccount
from fedipress.documents.activitypub import build_announce
from fedipress.documents.urls import Urls
from fedipress.federation.publish_plan import (
    Planned,
    pending_moves,
    plan_announces,
    plan_profiles,
    topic_audiences,
)
from fedipress.federation.store.base import PublishedObject

CONFIG = Config.for_test(
    fediverse=FediverseConfig(username="blog", accounts=(TopicAccount("rust", ("rust",)),))
)
BLOG = "https://blog.example"
ACTOR, RUST = f"{BLOG}/ap/actor", f"{BLOG}/ap/topics/rust/actor"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(days=1)


def actor(account: str = "", **fields: Any) -> dict[str, Any]:
    urls = Urls(CONFIG, account)
    return {"id": urls.actor(), "type": "Person", "name": "N", **fields}


def applied(
    known: dict[str, PublishedObject], plans: Sequence[Planned]
) -> dict[str, PublishedObject]:
    return {**known, **{p.object_id: p.record for p in plans}}


def announces(*uids: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "rust": [
            build_announce(CONFIG, "rust", Urls(CONFIG).post(u), "2026-01-01T00:00:00Z")
            for u in uids
        ]
    }


def test_profiles__recorded_first_then_one_update_per_change() -> None:
    actors = {"": actor(), "rust": actor("rust")}
    first = plan_profiles(CONFIG, actors, {}, NOW)
    assert [(p.change, p.object_id, p.activity) for p in first] == [
        ("remember", ACTOR, None),
        ("remember", RUST, None),
    ]
    known = applied({}, first)
    assert plan_profiles(CONFIG, actors, known, NOW) == []
    changed = {**actors, "rust": actor("rust", name="Crabs")}
    (update,) = plan_profiles(CONFIG, changed, known, NOW)
    assert (update.change, update.accounts, update.signed_by) == (
        "profile",
        ("rust",),
        RUST + "#main-key",
    )
    assert update.activity is not None and update.activity["object"]["name"] == "Crabs"
    assert update.signing_key is None
    assert plan_profiles(CONFIG, changed, applied(known, [update]), NOW) == []


def test_profiles__a_rotation_is_announced_even_unrecorded_and_pinned_to_the_old_key() -> None:
    (update,) = plan_profiles(CONFIG, {"": actor()}, {}, NOW, retiring={"": "0ld"})
    assert (update.change, update.signing_key, update.signed_by) == (
        "profile",
        "0ld",
        ACTOR + "#main-key",
    )


def test_moves__sent_once_and_a_later_cancel_only_recorded() -> None:
    known = applied({}, plan_profiles(CONFIG, {"": actor()}, {}, NOW))
    moved = {"": actor(movedTo="https://new.example/users/me")}
    assert pending_moves(CONFIG, moved, known) == {"": "https://new.example/users/me"}
    plans = plan_profiles(CONFIG, moved, known, NOW)
    assert [p.change for p in plans] == ["profile", "move"]
    move = plans[1].activity
    assert move is not None and (move["type"], move["actor"], move["object"], move["target"]) == (
        "Move",
        ACTOR,
        ACTOR,
        "https://new.example/users/me",
    )
    known = applied(known, plans)
    assert pending_moves(CONFIG, moved, known) == {}
    assert plan_profiles(CONFIG, moved, known, NOW) == []
    back = plan_profiles(CONFIG, {"": actor()}, known, NOW)
    assert [(p.change, p.record.state) for p in back] == [
        ("profile", "live"),
        ("remember", "deleted"),
    ]


def test_announces__a_new_account_records_then_boosts_undoes_and_boosts_anew() -> None:
    known = applied({}, plan_profiles(CONFIG, {"rust": actor("rust")}, {}, NOW))
    # A topic account's first publish only records what its outbox holds (no actor record
    # before it; the actor's record is written in the same publish)
    first = plan_announces(CONFIG, announces("old"), {}, NOW)
    assert [p.change for p in first] == ["remember"]
    known = applied(known, first)
    # A new post in its outbox is boosted, to its followers, signed by it
    (boost,) = plan_announces(CONFIG, announces("old", "new"), known, NOW)
    assert (boost.change, boost.accounts, boost.signed_by) == (
        "announce",
        ("rust",),
        RUST + "#main-key",
    )
    assert (
        boost.activity is not None
        and boost.activity["id"] == f"{BLOG}/ap/topics/rust/announces/new"
    )
    known = applied(known, [boost])
    assert plan_announces(CONFIG, announces("old", "new"), known, NOW) == []
    # The post leaves the outbox: Undo, embedding the Announce as sent
    (undo,) = plan_announces(CONFIG, announces("old"), known, NOW)
    assert undo.change == "undo" and undo.activity is not None
    assert undo.activity["object"]["id"] == boost.activity["id"]
    known = applied(known, [undo])
    # Back in: a new Announce id, and its Undo later names that id
    (again,) = plan_announces(CONFIG, announces("old", "new"), known, EARLIER + timedelta(days=2))
    assert again.activity is not None and again.activity["id"] != boost.activity["id"]
    known = applied(known, [again])
    (undo2,) = plan_announces(CONFIG, announces("old"), known, NOW)
    assert undo2.activity is not None and undo2.activity["object"]["id"] == again.activity["id"]


def test_audiences__edits_reach_the_topic_accounts_that_boost_or_boosted() -> None:
    post = Urls(CONFIG).post("new")
    assert topic_audiences(CONFIG, announces("new"), {}) == {post: ["rust"]}
    known = applied({}, plan_announces(CONFIG, announces("new"), {RUST: None}, NOW))  # type: ignore[dict-item]
    assert topic_audiences(CONFIG, {"rust": []}, known) == {post: ["rust"]}
    assert topic_audiences(CONFIG, {"rust": []}, {}) == {}
