"""Threading the replies of a post for the page: nesting, flattening below MAX_NESTING,
orphans, and initials."""

from __future__ import annotations

from datetime import UTC, datetime

from fedipress.documents.conversation import (
    MAX_NESTING,
    Person,
    ReplyInput,
    count,
    initials,
    thread,
    unknown_person,
)

POST = "https://blog.example/ap/posts/hello"
PAGE = "https://blog.example/posts/hello/"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def r(n: int, parent: str, actor: str = "https://m.example/users/a") -> ReplyInput:
    return ReplyInput(f"https://m.example/n/{n}", actor, parent, None, T0, None, f"<p>{n}</p>", "")


def ids(replies) -> list[object]:  # type: ignore[no-untyped-def]
    return [(x.id.rsplit("/", 1)[1], x.depth, ids(x.replies)) for x in replies]


def test_thread__nests_replies_under_what_they_answer() -> None:
    replies = [r(1, POST), r(2, PAGE), r(3, "https://m.example/n/1"), r(4, "https://m.example/n/3")]
    threads = thread([POST, PAGE], replies, {})
    assert ids(threads) == [("1", 1, [("3", 2, [("4", 3, [])])]), ("2", 1, [])]
    assert count(threads) == 4


def test_thread__flattens_below_the_nesting_limit_saying_whom_it_answers() -> None:
    chain = [r(1, POST)] + [
        r(n, f"https://m.example/n/{n - 1}", f"https://m.example/users/u{n}") for n in range(2, 8)
    ]
    people = {p.actor_id: p for p in (unknown_person(c.actor_id) for c in chain)}
    threads = thread([POST], chain, people)
    # depths 1..MAX_NESTING nested, the rest at MAX_NESTING, in order
    deepest = threads[0]
    for _ in range(MAX_NESTING - 1):
        deepest = deepest.replies[0]
    assert deepest.depth == MAX_NESTING
    flat = [x for x in _walk(threads) if x.depth == MAX_NESTING]
    assert [x.id.rsplit("/", 1)[1] for x in flat] == ["4", "5", "6", "7"]
    assert all(x.replies == () for x in flat)
    assert flat[0].answering is None
    assert [x.answering.name for x in flat[1:]] == ["u4", "u5", "u6"]  # type: ignore[union-attr]
    assert count(threads) == 7


def test_thread__a_reply_whose_parent_is_not_shown_starts_its_own_thread() -> None:
    threads = thread([POST], [r(1, "https://m.example/n/404"), r(2, POST)], {})
    assert ids(threads) == [("1", 1, []), ("2", 1, [])]


def test_thread__uses_people_and_falls_back_to_the_id() -> None:
    ann = Person(
        "https://m.example/users/a", "Ann", "@a@m.example", "https://m.example/@a", "", "A"
    )
    (known,) = thread([POST], [r(1, POST)], {ann.actor_id: ann})
    assert known.author == ann
    (unknown,) = thread([POST], [r(1, POST, "https://x.example/users/zed")], {})
    assert (unknown.author.name, unknown.author.initials) == ("zed", "Z")


def test_initials() -> None:
    assert initials("Ada Lovelace") == "AL"
    assert initials("ada") == "A"
    assert initials("Jean Paul Sartre") == "JP"
    assert initials("") == "?"


def _walk(replies):  # type: ignore[no-untyped-def]
    for x in replies:
        yield x
        yield from _walk(x.replies)
