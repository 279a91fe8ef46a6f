"""What the blog shows of its interactions: the approved, public likes, boosts and replies of
accounts not blocked, with the profiles of their authors. Read from the store by a build that
reaches it, and served by the inbox as a public JSON document for a build that does not
(`GET /ap/interactions`, docs/federation.md "How interactions reach the site").

Only approved, public data is ever in the document; the reader sanitizes it again, since it
came over the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

from fedipress.documents.activitypub import format_time, parse_time
from fedipress.documents.media import JSONObject
from fedipress.federation.activities import MAX_REPLY_CONTENT, MAX_SUMMARY, sanitize_html
from fedipress.federation.remote_text import MAX_HANDLE, MAX_NAME, plain_text, web_url
from fedipress.federation.store.base import (
    ActorProfile,
    Block,
    Interaction,
    InteractionKind,
    Store,
)

DOCUMENT_VERSION = 1
_ALL = 10_000_000  # "no limit" for list_interactions
_KINDS: dict[str, InteractionKind] = {"replies": "reply", "likes": "like", "shares": "announce"}


@dataclass(frozen=True)
class Shown:
    """The interactions a build shows, oldest first, and the profiles of their authors."""

    interactions: tuple[Interaction, ...] = ()
    profiles: dict[str, ActorProfile] = field(default_factory=dict)

    def for_objects(self, object_ids: Iterable[str]) -> Shown:
        wanted = set(object_ids)
        kept = tuple(i for i in self.interactions if i.object_id in wanted)
        actors = {i.actor_id for i in kept}
        return Shown(kept, {a: p for a, p in self.profiles.items() if a in actors})


@dataclass(frozen=True)
class Blocklist:
    """The store's blocks, matched as `Store.is_blocked` matches them, without a query per
    actor."""

    actors: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def of(cls, blocks: Sequence[Block]) -> Blocklist:
        return cls(
            frozenset(b.value for b in blocks if b.kind == "actor"),
            frozenset(b.value for b in blocks if b.kind == "domain"),
        )

    def blocks(self, actor_id: str) -> bool:
        if actor_id.strip() in self.actors:
            return True
        try:
            host = urlsplit(actor_id).hostname or ""
        except ValueError:
            return False
        labels = host.rstrip(".").split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels)))


def load_shown(store: Store) -> Shown:
    """The approved public interactions of actors that are not blocked, with their profiles.
    A hidden or held reply is not shown, and neither are the replies below it."""
    blocklist = Blocklist.of(store.list_blocks())
    rows = store.list_interactions(state="approved", public=True, limit=_ALL)
    if blocklist.actors or blocklist.domains:
        verdicts: dict[str, bool] = {}  # per actor: tens of thousands of rows, fewer actors
        for item in rows:
            if item.actor_id not in verdicts:
                verdicts[item.actor_id] = blocklist.blocks(item.actor_id)
        kept = [i for i in rows if not verdicts[i.actor_id]]
    else:
        kept = list(rows)
    kept = _reachable(kept)
    profiles = store.list_profiles([i.actor_id for i in kept])
    return Shown(tuple(kept), profiles)


def _reachable(items: list[Interaction]) -> list[Interaction]:
    """Replies whose parent reply is shown, or that answer the post itself: a reply below a
    hidden, held, blocked or deleted one would be shown out of its context."""
    replies = {i.id: i for i in items if i.kind == "reply"}
    known: dict[str, bool] = {}

    def visible(reply: Interaction) -> bool:
        chain: list[str] = []
        current = reply
        while True:
            if current.id in known:
                result = known[current.id]
                break
            chain.append(current.id)
            if current.depth == 0:
                result = True
                break
            parent = replies.get(current.in_reply_to or "")
            if parent is None or parent.id in chain:
                result = False
                break
            current = parent
        for reply_id in chain:
            known[reply_id] = result
        return result

    return [i for i in items if i.kind != "reply" or visible(i)]


# --- the public document -------------------------------------------------------------------


def build_document(shown: Shown, avatar_url: Callable[[str], str] | None = None) -> JSONObject:
    """The public JSON document: per post object id, its replies, likes and shares; and the
    profiles of their authors (`avatar` names the image's digest and type, fetched from
    `avatar_url(digest)` when given)."""
    posts: dict[str, dict[str, list[JSONObject]]] = {}
    for item in shown.interactions:
        entry = posts.setdefault(item.object_id, {"replies": [], "likes": [], "shares": []})
        if item.kind == "reply":
            entry["replies"].append(
                {
                    "id": item.id,
                    "actor": item.actor_id,
                    "inReplyTo": item.in_reply_to,
                    "depth": item.depth,
                    "url": item.url,
                    "published": format_time(item.published) if item.published else None,
                    "updated": format_time(item.updated) if item.updated else None,
                    "content": item.content_html or "",
                    "summary": item.summary,
                }
            )
        else:
            key = "likes" if item.kind == "like" else "shares"
            published = format_time(item.published) if item.published else None
            entry[key].append({"id": item.id, "actor": item.actor_id, "published": published})
    actors: dict[str, JSONObject] = {}
    for actor_id, profile in sorted(shown.profiles.items()):
        digest = profile.avatar_digest
        avatar = None
        if digest is not None:
            avatar = {"digest": digest, "mediaType": profile.avatar_type}
            if avatar_url is not None:
                avatar["url"] = avatar_url(digest)
        actors[actor_id] = {
            "name": profile.name,
            "handle": profile.handle,
            "url": profile.url,
            "avatar": avatar,
        }
    return {"version": DOCUMENT_VERSION, "posts": posts, "actors": actors}


@dataclass(frozen=True)
class AvatarRef:
    digest: str
    media_type: str


def parse_document(document: object, now: datetime) -> tuple[Shown, dict[str, AvatarRef]]:
    """The interactions in a fetched public document, every value checked and sanitized
    again, and the avatars it names by actor. Raises ValueError for a document of another
    shape."""
    if not isinstance(document, dict) or document.get("version") != DOCUMENT_VERSION:
        raise ValueError(f"not a version {DOCUMENT_VERSION} interactions document")
    posts = document.get("posts")
    actors = document.get("actors")
    if not isinstance(posts, dict) or not isinstance(actors, dict):
        raise ValueError("the document lacks 'posts' or 'actors'")
    items: list[Interaction] = []
    for object_id, entry in posts.items():
        if web_url(object_id) is None or not isinstance(entry, dict):
            continue
        for key, kind in _KINDS.items():
            for raw in entry.get(key) or []:
                item = _parse_item(raw, kind, object_id)
                if item is not None:
                    items.append(item)
    profiles: dict[str, ActorProfile] = {}
    avatars: dict[str, AvatarRef] = {}
    for actor_id, raw in actors.items():
        if web_url(actor_id) is None or not isinstance(raw, dict):
            continue
        handle = plain_text(raw.get("handle"), MAX_HANDLE) or None
        profiles[actor_id] = ActorProfile(
            actor_id,
            plain_text(raw.get("name"), MAX_NAME) or None,
            handle if handle and " " not in handle else None,
            web_url(raw.get("url")) or actor_id,
            now,
        )
        avatar = raw.get("avatar")
        if isinstance(avatar, dict):
            digest, media_type = avatar.get("digest"), avatar.get("mediaType")
            if isinstance(digest, str) and digest.isalnum() and isinstance(media_type, str):
                avatars[actor_id] = AvatarRef(digest, media_type)
    items.sort(key=lambda i: (i.published or now, i.id))
    return Shown(tuple(_reachable(items)), profiles), avatars


def with_avatar(profile: ActorProfile, media_type: str, data: bytes) -> ActorProfile:
    return replace(profile, avatar_type=media_type, avatar_data=data)


def _parse_item(raw: object, kind: InteractionKind, object_id: str) -> Interaction | None:
    if not isinstance(raw, dict):
        return None
    item_id, actor = raw.get("id"), raw.get("actor")
    if web_url(item_id) is None or web_url(actor) is None:
        return None
    published = parse_time(raw.get("published"))
    if kind != "reply":
        return Interaction(str(item_id), kind, str(actor), object_id, published=published)
    parent = raw.get("inReplyTo")
    depth = raw.get("depth")
    return Interaction(
        str(item_id),
        "reply",
        str(actor),
        object_id,
        content_html=sanitize_html(str(raw.get("content") or "")[:MAX_REPLY_CONTENT]),
        url=web_url(raw.get("url")),
        in_reply_to=parent if isinstance(parent, str) else None,
        published=published,
        updated=parse_time(raw.get("updated")),
        summary=plain_text(raw.get("summary"), MAX_SUMMARY) or None,
        depth=depth if isinstance(depth, int) and 0 <= depth <= 1000 else 0,
    )
