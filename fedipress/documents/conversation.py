"""The conversation under a post, as templates see it (`conversation` in post.html, see
docs/themes.md): threaded replies, likes and boosts, made from the approved interactions the
build read. Pure: values in, values out; the text is sanitized before it gets here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

# Replies nest this deep on the page (1: a reply to the post); deeper ones are shown at this
# depth, in order, each saying whom it answers, so narrow screens keep a readable column.
MAX_NESTING = 4
# Likes and boosts show this many people; the rest are behind a "more" toggle, up to
# PEOPLE_LISTED in all: a post with thousands of likes keeps a page of a sensible size.
PEOPLE_SHOWN = 20
PEOPLE_LISTED = 200


@dataclass(frozen=True)
class Person:
    """An account that replied, liked or boosted."""

    actor_id: str
    name: str  # the display name, else the user part of the handle
    handle: str  # '@user@host', or '' when unknown
    url: str  # the profile page (http(s)), else the actor id
    avatar: str  # the site path of the avatar the blog serves, or '' (show `initials`)
    initials: str  # one or two letters from the name


@dataclass(frozen=True)
class Reply:
    """One approved public reply, with the replies to it."""

    id: str
    url: str  # the reply on its own server (http(s)) for the date link, or
    author: Person
    published: datetime | None
    updated: datetime | None
    content: str  # sanitized HTML: print with `| safe`
    summary: str  # the content warning, or ''
    depth: int  # 1 for a reply to the post, at most MAX_NESTING
    replies: tuple[Reply, ...]  # nested replies, oldest first
    answering: Person | None  # when shown flattened: the author of the reply it answers


@dataclass(frozen=True)
class Conversation:
    """Everything `conversation` holds on a post page of a Fediverse site."""

    object_id: str  # the post's ActivityPub id: readers paste it into their server's search
    replies: tuple[Reply, ...]  # the threads, oldest first
    reply_count: int  # every reply shown, nested ones included
    likes: tuple[Person, ...]
    boosts: tuple[Person, ...]
    interactions_url: str  # the site path of this post's public interactions document

    @property
    def people_shown(self) -> int:
        return PEOPLE_SHOWN

    @property
    def people_listed(self) -> int:
        return PEOPLE_LISTED


@dataclass(frozen=True)
class ReplyInput:
    """A reply as the build read it (the store's or the inbox document's fields)."""

    id: str
    actor_id: str
    in_reply_to: str | None
    url: str | None
    published: datetime | None
    updated: datetime | None
    content: str
    summary: str


def initials(name: str) -> str:
    """'Ada Lovelace' -> 'AL', 'ada' -> 'A'; '?' when there is no letter."""
    letters = [word[0] for word in name.replace("@", " ").split() if word[:1].isalnum()]
    return ("".join(letters[:2]) or "?").upper()


def thread(
    roots: Iterable[str],
    replies: Sequence[ReplyInput],
    people: Mapping[str, Person],
) -> tuple[Reply, ...]:
    """Nest `replies` under the one they answer; a reply whose parent is one of `roots` (the
    post's ids) or is not shown (deleted, held) starts a thread of its own. Input order is
    kept (oldest first); cycles cannot form, since each reply is placed once."""
    root_ids = set(roots)
    by_id = {r.id: r for r in replies}
    children: dict[str, list[ReplyInput]] = {}
    tops: list[ReplyInput] = []
    for reply in replies:
        parent = reply.in_reply_to
        if parent is None or parent in root_ids or parent not in by_id or parent == reply.id:
            tops.append(reply)
        else:
            children.setdefault(parent, []).append(reply)

    placed: set[str] = set()

    def person(actor_id: str) -> Person:
        return people.get(actor_id) or unknown_person(actor_id)

    def build(reply: ReplyInput, depth: int, answering: Person | None) -> list[Reply]:
        """The reply, and at MAX_NESTING its whole subtree flattened after it."""
        placed.add(reply.id)
        kids = [k for k in children.get(reply.id, ()) if k.id not in placed]
        if depth < MAX_NESTING:
            nested = tuple(r for k in kids for r in build(k, depth + 1, None))
            return [_reply(reply, depth, nested, answering, person)]
        flat = [_reply(reply, depth, (), answering, person)]
        for kid in kids:
            flat += build(kid, depth, person(reply.actor_id))
        return flat

    result: list[Reply] = []
    for top in tops:
        if top.id not in placed:
            result += build(top, 1, None)
    return tuple(result)


def _reply(
    reply: ReplyInput,
    depth: int,
    nested: tuple[Reply, ...],
    answering: Person | None,
    person: Callable[[str], Person],
) -> Reply:
    author = person(reply.actor_id)
    return Reply(
        reply.id,
        reply.url or "",
        author,
        reply.published,
        reply.updated,
        reply.content,
        reply.summary,
        depth,
        nested,
        answering,
    )


def unknown_person(actor_id: str) -> Person:
    """An account whose profile could not be fetched: named after its id's last segment."""
    tail = actor_id.rstrip("/").rsplit("/", 1)[-1].lstrip("@") or actor_id
    url = actor_id if actor_id.lower().startswith(("https://", "http://")) else ""
    return Person(actor_id, tail, "", url, "", initials(tail))


def count(replies: Sequence[Reply]) -> int:
    return sum(1 + count(r.replies) for r in replies)
