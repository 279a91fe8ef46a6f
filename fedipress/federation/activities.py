"""What the inbox does with a verified activity (FEDERATION.md §3, §7, §8). No HTTP types.

Each activity is handled in two steps: `prepare` does the network work it needs (fetching
a new follower's actor, a Move's target) outside any transaction, then `apply` makes every
effect — marking the id seen, storing, queueing the Accept — in one store transaction, so a
crash never leaves half an effect and a repeated activity has no second one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import nh3

from fedipress.documents.activitypub import parse_time
from fedipress.documents.media import AS_CONTEXT, PUBLIC, JSONObject
from fedipress.documents.urls import Urls
from fedipress.errors import StoreConnectionLost
from fedipress.federation.handles import JrdFetch, confirmed_handle, guessed_handle
from fedipress.federation.keys import key_id_for
from fedipress.federation.origins import origin_of
from fedipress.federation.remote_text import plain_text
from fedipress.federation.store.base import (
    ActorProfile,
    Flag,
    Follower,
    FollowerState,
    Interaction,
    InteractionKind,
    InteractionState,
    RemoteActor,
    Store,
)

log = logging.getLogger("fedipress.inbox")
ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Organization", "Group"})

# Mastodon's allow-list for remote HTML (sanitize_config.rb MASTODON_STRICT, FEDERATION.md §5.4).
_TAGS = {
    "p",
    "br",
    "span",
    "a",
    "del",
    "s",
    "pre",
    "blockquote",
    "code",
    "b",
    "strong",
    "u",
    "i",
    "em",
    "ul",
    "ol",
    "li",
}
_ATTRIBUTES = {
    "a": {"href", "class"},
    "span": {"class"},
    "ol": {"start", "reversed"},
    "li": {"value"},
}
_SCHEMES = {"http", "https"}

# Caps on what one activity may add to the store (docs/federation.md, "Limits").
MAX_ID_LENGTH = 2048  # any id or URL; longer ones are refused with 400
MAX_TYPE_LENGTH = 256
MAX_REPLY_CONTENT = 20_000  # characters of a reply's HTML kept; the rest is cut
MAX_SUMMARY = 500  # characters of a reply's content warning kept
# Replies to replies are kept down to this depth (0 is a reply to a post): a longer chain
# is refused with a log line, so no thread can grow without bound.
MAX_THREAD_DEPTH = 100
MAX_REPORT_CONTENT = 5_000  # characters of a report's comment kept
MAX_REPORT_OBJECTS = 50  # reported objects kept per report
MAX_RAW_JSON = 65_536  # characters of an activity's JSON kept beside a reply or report
MAX_REPORTS_PER_HOUR = 10  # per reporting actor; more are dropped with 202 and a log line
REPORT_WINDOW = timedelta(hours=1)
MAX_NESTING = 32  # levels of JSON arrays and objects in a body
_REFERENCES = ("actor", "object", "target", "attributedTo", "inReplyTo")
_EMBEDDED_DEPTH = 2  # handlers read an activity, its object and that object's references

# Fetches a remote actor document (signed GET through the guarded fetch path); None when
# it cannot be had right now.
DocumentFetch = Callable[[str], Awaitable["JSONObject | None"]]
# (actor id, now, the actor document when the activity embeds it) -> a profile to store.
ProfileFetch = Callable[[str, datetime, "JSONObject | None"], Awaitable["ActorProfile | None"]]


def sanitize_html(html: str) -> str:
    """Remote HTML made safe to show on the blog: Mastodon's tags, no scripts or styles."""
    return nh3.clean(
        html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES, link_rel="nofollow noopener"
    )


@dataclass(frozen=True)
class Outcome:
    """How the inbox answers, and what it did (for logs and tests)."""

    status: int
    effect: str
    queued: int = 0  # deliveries queued: the sender should wake
    shown: bool = False  # what the blog shows changed (a reply, like or boost): rebuild


@dataclass(frozen=True)
class Prepared:
    actor: RemoteActor | None
    aliases: tuple[str, ...] = ()
    moved_from: str | None = None  # a Follow from a follower of an account that moved here
    profile: ActorProfile | None = None  # the sender's profile, to store


@dataclass(frozen=True)
class Settings:
    manually_approves_followers: bool = False
    # Which replies are shown at once (config.MODERATION_POLICIES): from followers, all, none.
    moderation: str = "followers"


PUBLIC_IDS = frozenset({PUBLIC, "as:Public", "Public"})


def is_public(obj: JSONObject) -> bool:
    """Addressed to the public collection, in `to` (public) or `cc` (Mastodon's unlisted):
    anyone may read it. Followers-only and direct objects are not."""
    for field in ("to", "cc"):
        value = obj.get(field)
        for item in value if isinstance(value, list) else [value]:
            if _id(item) in PUBLIC_IDS:
                return True
    return False


def _id(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _type(value: object) -> str | None:
    return value.get("type") if isinstance(value, dict) else None


def _same_host(a: str, b: str) -> bool:
    # The same origin (FEP-fe34), not the same netloc string: the scheme counts, a default
    # port is the same as none, credentials are no part of the host, and an unparsable URL
    # is on nobody's host.
    origin = origin_of(a)
    return bool(origin[1]) and origin == origin_of(b)


def check_shape(activity: JSONObject) -> str | None:
    """Why an activity is malformed, or None: id, type and actor are needed, and the
    ActivityStreams context (Mastodon drops activities without it, FEDERATION.md §4.3). Every field
    a handler reads must have the type it expects, and every id or URL in them must parse
    and fit MAX_ID_LENGTH, so that no handler meets a value it cannot store or compare."""
    context = activity.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if not any(isinstance(c, str) and c in (AS_CONTEXT, "as:") for c in contexts):
        return "the activity's @context lacks the ActivityStreams context"
    if not isinstance(activity.get("type"), str):
        return "the activity has no type"
    if _id(activity.get("actor")) is None:
        return "the activity has no actor"
    if not isinstance(activity.get("id"), str):
        return "the activity has no id"
    for field in ("id", "actor"):
        problem = _url_problem(str(_id(activity[field])), f"the activity's {field}", True)
        if problem is not None:
            return problem
    return _object_problem(activity, "the activity", 0)


def check_json(document: object) -> str | None:
    """Why a parsed body cannot be handled, or None: nesting deeper than MAX_NESTING (no
    activity needs it, and it costs recursion downstream), or a string, key or value, with
    a NUL or a lone surrogate: `json` accepts "\\u0000" and "\\ud800", but PostgreSQL text
    refuses NUL and neither database can encode a lone surrogate."""
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth >= MAX_NESTING:
                return f"the JSON is nested deeper than {MAX_NESTING} levels"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, str) and not _storable(value):
            return "the JSON has a string with a NUL character or a lone surrogate"
    return None


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _url_problem(value: str, what: str, absolute: bool) -> str | None:
    """Why an id or URL cannot be stored or compared: too long, unparseable (`http://[`),
    or, when it must be `absolute`, not an http(s) URL with a host."""
    if len(value) > MAX_ID_LENGTH:
        return f"{what} is longer than {MAX_ID_LENGTH} characters"
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # both raise ValueError on a malformed netloc
    except ValueError:
        return f"{what} is not a valid URL"
    if absolute and (parts.scheme not in _SCHEMES or not host):
        return f"{what} is not an http(s) URL"
    return None


def _object_problem(obj: JSONObject, what: str, depth: int) -> str | None:
    """The fields of an activity (depth 0) or an object it embeds that handlers read."""
    if "id" in obj and depth > 0:
        if not isinstance(obj["id"], str):
            return f"{what}'s id is not a string"
        problem = _url_problem(obj["id"], f"{what}'s id", False)
        if problem is not None:
            return problem
    kind = obj.get("type")
    if kind is not None and (not isinstance(kind, str) or len(kind) > MAX_TYPE_LENGTH):
        return f"{what}'s type is not a short string"
    if obj.get("content") is not None and not isinstance(obj["content"], str):
        return f"{what}'s content is not a string"
    fields = (*_REFERENCES, "url") if depth < _EMBEDDED_DEPTH else ()
    for field in fields:
        problem = _reference_problem(obj.get(field), f"{what}'s {field}", depth + 1)
        if problem is not None:
            return problem
    return None


def _reference_problem(value: object, what: str, depth: int) -> str | None:
    """A reference (actor, object, url...): an id, an embedded object, or a list of those."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            problem = _url_problem(item, what, False)
        elif isinstance(item, dict):
            problem = _object_problem(_as_object(item), what, depth)
        else:
            problem = f"{what} is not a URL or an object"
        if problem is not None:
            return problem
    return None


def _as_object(link: JSONObject) -> JSONObject:
    """A Link's `href` is checked as its id (the reply `url` handler reads either)."""
    if "href" in link and "id" not in link:
        return {**link, "id": link["href"]}
    return link


def parse_actor(document: JSONObject, now: datetime) -> RemoteActor | None:
    """A remote actor document as the store keeps it (inbox, shared inbox, handle)."""
    actor_id = document.get("id")
    inbox = document.get("inbox")
    if not isinstance(actor_id, str) or not isinstance(inbox, str):
        return None
    if _url_problem(actor_id, "id", True) or _url_problem(inbox, "inbox", True):
        return None  # nothing could be delivered to it
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    shared = shared or document.get("sharedInbox")
    if not isinstance(shared, str) or _url_problem(shared, "sharedInbox", True):
        shared = None
    # A guess, port kept; `InboxHandler` confirms it with WebFinger when it can.
    handle = guessed_handle(actor_id, document.get("preferredUsername"))
    return RemoteActor(actor_id, inbox, shared, handle, now)


def accept_id(actor_id: str, follow_id: str) -> str:
    """A stable Accept id per Follow: a retried handling never makes a second Accept."""
    return f"{actor_id}#accepts/{hashlib.sha256(follow_id.encode()).hexdigest()[:24]}"


def build_accept(our_actor: str, follow: JSONObject, kind: str = "Accept") -> JSONObject:
    """Accept (or Reject) embedding the Follow unchanged, id included: Mastodon matches it by
    id, Misskey by `object.actor` (FEDERATION.md §3.2)."""
    follower = _id(follow.get("actor"))
    return {
        "@context": AS_CONTEXT,
        "id": accept_id(our_actor, str(follow.get("id"))) + ("" if kind == "Accept" else "/reject"),
        "type": kind,
        "actor": our_actor,
        "to": [follower],
        "object": follow,
    }


def queue_reply(store: Store, reply: JSONObject, inbox: str, now: datetime) -> int:
    """Queue an Accept/Reject to a follower's personal inbox (Mastodon sends them there),
    signed by the account that answers (its `actor`)."""
    body = json.dumps(reply, ensure_ascii=False)
    signer = key_id_for(str(reply["actor"]))
    return store.enqueue(str(reply["id"]), [inbox], body, now, signed_by=signer)


MAX_COLLECTION_PAGES = 10  # pages of a followers or following collection read to find one actor


async def collection_has(fetch: DocumentFetch, url: object, member: str) -> bool:
    """Whether a remote collection (followers, following) lists `member`, reading at most
    MAX_COLLECTION_PAGES pages. False when it is hidden, missing or unreadable: Mastodon
    serves a hidden network as a bare count."""
    document = await fetch(url) if isinstance(url, str) else None
    seen: set[str] = set()
    for _ in range(MAX_COLLECTION_PAGES + 1):
        if not isinstance(document, dict):
            return False
        items = document.get("orderedItems", document.get("items")) or []
        if member in {_id(item) for item in (items if isinstance(items, list) else [items])}:
            return True
        following = document.get("first") if "first" in document else document.get("next")
        if isinstance(following, dict):
            document = following
            continue
        if not isinstance(following, str) or following in seen:
            return False
        seen.add(following)
        document = await fetch(following)
    return False


@dataclass
class InboxHandler:
    urls: Urls
    store: Store
    settings: Settings
    fetch_document: DocumentFetch
    forget_key: Callable[[str], None] | None = None  # also drops in-memory copies of a key
    fetch_jrd: JrdFetch | None = None  # WebFinger, for followers' handles; None: guess them
    # The sender's profile (name, handle, avatar) to store with a like, boost or reply;
    # None when the stored one is fresh or none can be had now.
    fetch_profile: ProfileFetch | None = None

    @property
    def actor(self) -> str:
        return self.urls.actor()

    def account_of(self, actor_id: str | None) -> str | None:
        """Which of the site's accounts `actor_id` is ('' the main one), else None."""
        return self.urls.account_of(actor_id)

    def _actor_of(self, account: str) -> str:
        return self.urls.for_account(account).actor()

    def _aliases(self, account: str) -> tuple[str, ...]:
        fedi = self.urls.config.fediverse
        if fedi is None:
            return ()
        return fedi.account(account).also_known_as if account else fedi.also_known_as

    def _ours(self, object_id: str | None) -> bool:
        """Is this one of our posts (by object id or by its page URL)?"""
        if not object_id:
            return False
        return object_id.startswith(self.urls.absolute("/ap/posts/")) or (
            _same_host(object_id, self.actor)
            and not object_id.startswith(self.urls.absolute("/ap/"))
        )

    async def handle(self, activity: JSONObject, signer: str, now: datetime) -> Outcome:
        """Handle a verified activity whose signing key belongs to `signer`."""
        actor = _id(activity.get("actor"))
        if actor != signer:
            # Mastodon drops these too (process_activity_service.rb `different_actor?`).
            return Outcome(401, f"signed by {signer}, but the activity's actor is {actor}")
        if not _same_host(str(activity["id"]), actor):
            return Outcome(400, "the activity id is not on the actor's host")
        kind = str(activity["type"])
        prepared = await self._prepare(kind, activity, actor, now)
        if isinstance(prepared, Outcome):
            return prepared
        # The store blocks (a lock, a slow query): in a thread, so the loop answers others.
        return await asyncio.to_thread(self._apply_retrying, kind, activity, actor, now, prepared)

    def _apply_retrying(
        self,
        kind: str,
        activity: JSONObject,
        actor: str,
        now: datetime,
        prepared: Prepared | None,
    ) -> Outcome:
        """`_apply`, once more if the store's connection broke under it. Safe: a broken
        transaction rolled back, and if its COMMIT did land the id is seen, so the retry
        answers "seen before" with no second effect."""
        try:
            return self._apply(kind, activity, actor, now, prepared)
        except StoreConnectionLost:
            return self._apply(kind, activity, actor, now, prepared)

    async def _prepare(
        self, kind: str, activity: JSONObject, actor: str, now: datetime
    ) -> Prepared | Outcome | None:
        """The network part: the follower's inboxes for a Follow, the target of a Move."""
        followed = self.account_of(_id(activity.get("object")))
        if kind == "Follow" and followed is not None:
            document = await self.fetch_document(actor)
            remote = parse_actor(document, now) if document else None
            if document is None or remote is None or remote.actor_id != actor:
                # Without the follower's inbox no Accept can go out; 503 makes them retry.
                return Outcome(503, "cannot fetch the follower's actor right now")
            moved_from = None
            if self.settings.manually_approves_followers:
                moved_from = await self._moved_here(followed, actor, document)
            return Prepared(await self._with_handle(remote, document), moved_from=moved_from)
        if kind == "Move":
            target = _id(activity.get("target"))
            if target is None or _id(activity.get("object")) != actor:
                return Outcome(400, "a Move needs object == actor and a target")
            document = await self.fetch_document(target)
            if document is None:
                return Prepared(None)
            aliases = document.get("alsoKnownAs") or []
            aliases = aliases if isinstance(aliases, list) else [aliases]
            moved = parse_actor(document, now)
            if moved is not None:
                moved = await self._with_handle(moved, document)
            return Prepared(moved, tuple(a for a in aliases if a))
        if self.fetch_profile is not None and await self._about_us(kind, activity):
            embedded = activity.get("object") if kind == "Update" else None
            document = embedded if isinstance(embedded, dict) else None
            return Prepared(None, profile=await self.fetch_profile(actor, now, document))
        return None

    async def _about_us(self, kind: str, activity: JSONObject) -> bool:
        """Whether the activity interacts with the blog, so that its sender may be shown:
        a like or boost of a post, a reply in one of its threads, an Update of an actor."""
        obj = activity.get("object")
        if kind in ("Like", "Announce"):
            return self._ours(_id(obj))
        if kind == "Update":
            return _type(obj) in ACTOR_TYPES and _id(obj) == _id(activity.get("actor"))
        if kind == "Create" and isinstance(obj, dict):
            parent = _id(obj.get("inReplyTo"))
            if self._ours(parent):
                return True
            stored = await asyncio.to_thread(self.store.get_interaction, parent) if parent else None
            return stored is not None and stored.kind == "reply"
        return False

    async def _moved_here(self, account: str, follower: str, document: JSONObject) -> str | None:
        """The old account (listed in our `alsoKnownAs`) that moved here and that `follower`
        follows, else None: after a Move, its followers' servers follow us (FEDERATION.md
        §8.4). The old account must name us in `movedTo`, and its followers collection, or
        the follower's following collection, must list the follow (Mastodon follows the
        target before it undoes the old follow, so both still show it)."""
        ours = self._actor_of(account)
        for old in self._aliases(account):
            old_actor = await self.fetch_document(old)
            if not isinstance(old_actor, dict) or _id(old_actor.get("movedTo")) != ours:
                continue
            if await collection_has(self.fetch_document, old_actor.get("followers"), follower):
                return old
            if await collection_has(self.fetch_document, document.get("following"), old):
                return old
        return None

    async def _with_handle(self, remote: RemoteActor, document: JSONObject) -> RemoteActor:
        """The actor with the handle its WebFinger confirms (FEDERATION.md §1.3)."""
        if self.fetch_jrd is None:
            return remote
        username = document.get("preferredUsername")
        handle = await confirmed_handle(self.fetch_jrd, remote.actor_id, username)
        return dataclasses.replace(remote, handle=handle)

    def _apply(
        self,
        kind: str,
        activity: JSONObject,
        actor: str,
        now: datetime,
        prepared: Prepared | None,
    ) -> Outcome:
        store = self.store
        with store.transaction():
            if not store.mark_seen(str(activity["id"]), now):
                return Outcome(202, "seen before")
            handler = getattr(self, f"_on_{kind.lower()}", None)
            if handler is None:
                return Outcome(202, f"{kind} ignored")
            if prepared is not None and prepared.profile is not None:
                store.put_profile(prepared.profile)
            outcome: Outcome = handler(activity, actor, now, prepared)
            return outcome

    # --- follows ------------------------------------------------------------------------

    def _on_follow(
        self, activity: JSONObject, actor: str, now: datetime, prepared: Prepared | None
    ) -> Outcome:
        account = self.account_of(_id(activity.get("object")))
        if account is None or prepared is None or not prepared.actor:
            return Outcome(202, "Follow of someone else ignored")
        remote = prepared.actor
        self.store.put_remote_actor(remote)
        known = self.store.get_follower(actor, account)
        state: FollowerState = (
            "pending" if self.settings.manually_approves_followers else "accepted"
        )
        if known is not None and known.state == "accepted":
            state = "accepted"  # a repeat Follow re-accepts (Mastodon does, FEDERATION.md §3.3)
        if prepared.moved_from is not None:
            state = "accepted"  # they followed the account that moved here (FEDERATION.md §8.4)
        self.store.upsert_follower(
            Follower(
                actor,
                remote.inbox,
                remote.shared_inbox,
                remote.handle,
                str(activity["id"]),
                state,
                known.created_at if known else now,
                now,
                account,
            )
        )
        if state == "pending":
            return Outcome(202, "Follow awaits approval")
        queued = self.queue_reply(
            build_accept(self._actor_of(account), activity), remote.inbox, now
        )
        effect = "Follow accepted"
        if prepared.moved_from is not None:
            effect += f" (a follower of {prepared.moved_from}, which moved here)"
        return Outcome(202, effect, queued)

    def queue_reply(self, reply: JSONObject, inbox: str, now: datetime) -> int:
        return queue_reply(self.store, reply, inbox, now)

    def _on_undo(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        inner = activity.get("object")
        inner_id = _id(inner)
        inner_type = _type(inner)
        if inner_type is not None and _id(inner.get("actor")) not in (None, actor):  # type: ignore[union-attr]
            return Outcome(202, "Undo of someone else's activity ignored")
        account: str | None = None  # which of our accounts was followed, when it says
        if inner_type == "Follow" and (followed := _id(inner.get("object"))) is not None:  # type: ignore[union-attr]
            # Mastodon keys the Undo on the inner Follow's object too (undo.rb, FEDERATION.md §3.4).
            account = self.account_of(followed)
            if account is None:
                return Outcome(202, "Undo of a Follow of someone else ignored")
        follower: Follower | None = None
        if account is not None:
            follower = self.store.get_follower(actor, account)
        elif inner_id is not None and inner_type in (None, "Follow"):
            # A Follow by id alone: the stored Follow with that id says which account.
            by_id = self.store.get_follower_by_follow_id(inner_id)
            follower = by_id if by_id is not None and by_id.actor_id == actor else None
        if follower is None and inner_type == "Follow" and account is None:
            follower = self.store.get_follower(actor)
        if inner_type == "Follow" or follower is not None:
            account = follower.account if follower is not None else account or ""
            removed = self.store.remove_follower(actor, account)
            if removed and (target := self._moved_to(account)) is not None:
                # After our Move, an unfollow is the old half of a re-follow of the target.
                self.store.record_moved_follower(account, actor, target, now)
            return Outcome(202, "unfollowed" if removed else "Undo of an unknown Follow")
        if inner_type in ("Like", "Announce") or inner_id:
            # By id only the sender's own like or boost: an id names no owner by itself.
            stored = self.store.get_interaction(inner_id) if inner_id else None
            removed = bool(
                stored is not None
                and stored.actor_id == actor
                and stored.kind != "reply"
                and self.store.remove_interaction(stored.id)
            )
            if not removed and inner_type in ("Like", "Announce"):
                target = _id(inner.get("object"))  # type: ignore[union-attr]
                kind: InteractionKind = "like" if inner_type == "Like" else "announce"
                removed = bool(target and self.store.remove_interactions_by(actor, target, kind))
            if removed:
                return Outcome(202, "interaction removed", shown=True)
            return Outcome(202, "Undo of nothing known")
        return Outcome(202, "Undo ignored")

    def _moved_to(self, account: str) -> str | None:
        """The target of this account's Move, once it was sent (the published record keeps
        it), else None."""
        move = self.store.get_published(self.urls.for_account(account).move_record())
        return move.uid if move is not None and move.state == "live" else None

    def _on_block(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        account = self.account_of(_id(activity.get("object")))
        if account is not None:
            # Stop delivering to them from that account (FEDERATION.md §7).
            self.store.remove_follower(actor, account)
            return Outcome(202, "blocked by a follower: removed")
        return Outcome(202, "Block ignored")

    def _on_delete(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        target = _id(activity.get("object"))
        if target == actor:
            # An account deleted: forget it without fetching anything (FEDERATION.md §4.4).
            self.store.remove_follower(actor, None)
            forgotten = self.store.remove_actor_interactions(actor)
            return Outcome(202, "actor deleted", shown=forgotten > 0)
        stored = self.store.get_interaction(target) if target else None
        if stored is not None and stored.actor_id == actor:
            self.store.remove_interaction(stored.id)
            return Outcome(202, "reply deleted", shown=_shown(stored))
        return Outcome(202, "Delete of something unknown ignored")

    def _on_update(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        obj = activity.get("object")
        if not isinstance(obj, dict):
            return Outcome(202, "Update without an embedded object ignored")
        if obj.get("type") in ACTOR_TYPES and obj.get("id") == actor:
            remote = parse_actor(obj, now)
            if remote is None:
                return Outcome(202, "Update of an actor without an inbox ignored")
            self.store.put_remote_actor(remote)
            key = obj.get("publicKey")
            keys = key if isinstance(key, list) else [key]
            for entry in keys:
                if isinstance(entry, dict) and entry.get("owner") == actor and _id(entry):
                    # Refetched and verified on next use: a rotated key works at once.
                    if self.forget_key is not None:
                        self.forget_key(str(entry["id"]))
                    else:
                        self.store.delete_key(str(entry["id"]))
            for follower in self._following(actor):
                self.store.upsert_follower(
                    Follower(
                        actor,
                        remote.inbox,
                        remote.shared_inbox,
                        # The handle WebFinger confirmed at the Follow stays.
                        follower.handle or remote.handle,
                        follower.follow_activity_id,
                        follower.state,
                        follower.created_at,
                        now,
                        follower.account,
                    )
                )
            # A new name or avatar shows on every page the actor interacted with.
            shown = bool(self.store.list_interactions(actor_id=actor, limit=1))
            return Outcome(202, "actor updated", shown=shown)
        stored = self.store.get_interaction(str(obj.get("id")))
        if stored is None or stored.actor_id != actor or stored.kind != "reply":
            return Outcome(202, "Update of something unknown ignored")
        updated = parse_time(obj.get("updated"))
        if stored.updated and updated and updated <= stored.updated:
            return Outcome(202, "stale Update ignored")
        edited = Interaction(
            stored.id,
            "reply",
            actor,
            stored.object_id,
            stored.state,
            _reply_html(obj),
            _url(obj) or stored.url,
            stored.in_reply_to,
            stored.published,
            updated or now,
            _raw_json(obj),
            _summary(obj),
            is_public(obj) if ("to" in obj or "cc" in obj) else stored.public,
            stored.depth,
        )
        self.store.update_interaction(edited)
        return Outcome(202, "reply updated", shown=_shown(stored) or _shown(edited))

    def _following(self, actor: str) -> list[Follower]:
        """`actor`'s follower entries, one per account of the site it follows."""
        found = (self.store.get_follower(actor, account) for account in self.urls.accounts())
        return [follower for follower in found if follower is not None]

    def _on_move(
        self, activity: JSONObject, actor: str, now: datetime, prepared: Prepared | None
    ) -> Outcome:
        entries = self._following(actor)
        if not entries:
            return Outcome(202, "Move of someone who does not follow the blog ignored")
        target = prepared.actor if prepared else None
        if target is None:
            return Outcome(202, "Move target unreachable; ignored")
        if actor not in prepared.aliases:  # type: ignore[union-attr]
            # Mastodon requires the target to list the old account (move.rb, FEDERATION.md §8.1).
            return Outcome(202, "Move target does not list the old account; ignored")
        for follower in entries:
            self.store.remove_follower(actor, follower.account)
            self.store.upsert_follower(
                Follower(
                    target.actor_id,
                    target.inbox,
                    target.shared_inbox,
                    target.handle,
                    follower.follow_activity_id,
                    follower.state,
                    now,
                    now,
                    follower.account,
                )
            )
        return Outcome(202, "follower moved")

    # --- interactions -------------------------------------------------------------------

    def _interaction(
        self, activity: JSONObject, actor: str, now: datetime, kind: InteractionKind
    ) -> Outcome:
        target = _id(activity.get("object"))
        if not self._ours(target):
            return Outcome(202, f"{kind} of something not ours ignored")
        item = Interaction(
            str(activity["id"]),
            kind,
            actor,
            str(target),
            "approved",
            published=parse_time(activity.get("published")) or now,
            raw_json=_raw_json(activity),
        )
        added = self.store.add_interaction(item, now)
        if added:
            return Outcome(202, f"{kind} stored", shown=True)
        return Outcome(202, f"{kind} already known")

    def _on_like(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        return self._interaction(activity, actor, now, "like")

    def _on_announce(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        return self._interaction(activity, actor, now, "announce")

    def _on_create(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        obj = activity.get("object")
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            return Outcome(202, "Create without an embedded object ignored")
        parent = _id(obj.get("inReplyTo"))
        if self._ours(parent):
            post, depth = str(parent), 0
        else:
            # A reply to a reply in one of our threads belongs to the same post.
            above = self.store.get_interaction(parent) if parent else None
            if above is None or above.kind != "reply":
                return Outcome(202, "Create not replying to our posts ignored")
            post, depth = above.object_id, above.depth + 1
        if _id(obj.get("attributedTo")) != actor or not _same_host(obj["id"], actor):
            return Outcome(202, "reply not written by the sender ignored")
        if depth > MAX_THREAD_DEPTH:
            log.warning(
                "reply %s from %s refused: it is %d replies deep, over the %d kept",
                obj["id"],
                actor,
                depth + 1,
                MAX_THREAD_DEPTH + 1,
            )
            return Outcome(202, f"reply deeper than {MAX_THREAD_DEPTH + 1} levels refused")
        public = is_public(obj)
        item = Interaction(
            obj["id"],
            "reply",
            actor,
            post,
            self._reply_state(actor) if public else "pending",
            _reply_html(obj),
            _url(obj),
            parent,
            parse_time(obj.get("published")) or now,
            parse_time(obj.get("updated")),
            _raw_json(obj),
            _summary(obj),
            public,
            depth,
        )
        if len(str(obj.get("content") or "")) > MAX_REPLY_CONTENT:
            log.info("reply %s from %s cut to %d characters", obj["id"], actor, MAX_REPLY_CONTENT)
        added = self.store.add_interaction(item, now)
        if not added:
            return Outcome(202, "reply already known")
        if not public:
            return Outcome(202, "reply stored; not public, so never shown")
        return Outcome(202, f"reply stored ({item.state})", shown=_shown(item))

    def _reply_state(self, actor: str) -> InteractionState:
        """The moderation policy: shown at once for every sender, for followers, or none. A
        follower of any account of the site counts: a topic account's followers read the
        blog's posts through its boosts, and their replies go to the post itself."""
        policy = self.settings.moderation
        if policy == "all":
            return "approved"
        if policy == "followers":
            if any(f.state == "accepted" for f in self._following(actor)):
                return "approved"
        return "pending"

    def _on_flag(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        if self.store.count_flags_since(actor, now - REPORT_WINDOW) >= MAX_REPORTS_PER_HOUR:
            # 202, not 429: a 429 makes the sender retry the same report for days.
            log.warning("report %s from %s dropped: over the hourly limit", activity["id"], actor)
            return Outcome(202, f"over {MAX_REPORTS_PER_HOUR} reports in an hour: dropped")
        objects = activity.get("object")
        ids = [i for i in (map(_id, objects if isinstance(objects, list) else [objects])) if i]
        content = str(activity.get("content") or "")[:MAX_REPORT_CONTENT]
        kept = {**activity, "content": content, "object": ids[:MAX_REPORT_OBJECTS]}
        self.store.add_flag(
            Flag(
                str(activity["id"]),
                actor,
                content or None,
                tuple(ids[:MAX_REPORT_OBJECTS]),
                now,
                _raw_json(kept),
            )
        )
        return Outcome(202, "report stored for the author")


def _shown(item: Interaction) -> bool:
    """Whether the blog shows this interaction (approved and public)."""
    return item.state == "approved" and item.public


def _summary(obj: JSONObject) -> str | None:
    """A reply's content warning as plain text, or None."""
    return plain_text(obj.get("summary"), MAX_SUMMARY) or None


def _reply_html(obj: JSONObject) -> str:
    """A reply's sanitized HTML, cut to MAX_REPLY_CONTENT first (nh3 closes cut tags)."""
    return sanitize_html(str(obj.get("content") or "")[:MAX_REPLY_CONTENT])


def _raw_json(document: JSONObject) -> str | None:
    """The received JSON kept for reference, unless it is over MAX_RAW_JSON: the fields the
    blog uses are stored on their own, so a huge document is not worth its space."""
    text = json.dumps(document)
    return text if len(text) <= MAX_RAW_JSON else None


def _url(obj: JSONObject) -> str | None:
    """The object's `url` (a string, a Link, or the first of a list), if it is http(s)."""
    url = obj.get("url")
    if isinstance(url, list):
        url = url[0] if url else None
    return _web_url(_id(url) or (url.get("href") if isinstance(url, dict) else None))


_WEB_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)


def _web_url(value: object) -> str | None:
    """`value` if it is an http(s) URL, else None: a `javascript:` or `data:` link would run
    in the browser of whoever opens the reply's link."""
    if not isinstance(value, str) or not _WEB_URL.fullmatch(value):
        return None
    try:
        return value if urlsplit(value).hostname else None
    except ValueError:  # "http://[": not a URL at all
        return None
