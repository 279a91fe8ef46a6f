"""What the inbox does with a verified activity (interop spec §3, §7, §8). No HTTP types.

Each activity is handled in two steps: `prepare` does the network work it needs (fetching
a new follower's actor, a Move's target) outside any transaction, then `apply` makes every
effect — marking the id seen, storing, queueing the Accept — in one store transaction, so a
crash never leaves half an effect and a repeated activity has no second one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import nh3

from fedipress.documents.activitypub import parse_time
from fedipress.documents.urls import Urls
from fedipress.federation.fetch import origin_of
from fedipress.federation.store.base import (
    Flag,
    Follower,
    FollowerState,
    Interaction,
    InteractionKind,
    RemoteActor,
    Store,
)

JSONObject = dict[str, Any]
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Organization", "Group"})

# Mastodon's allow-list for remote HTML (sanitize_config.rb MASTODON_STRICT, spec §5.4).
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

# Fetches a remote actor document (signed GET through the guarded fetch path); None when
# it cannot be had right now.
DocumentFetch = Callable[[str], Awaitable["JSONObject | None"]]


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


@dataclass(frozen=True)
class Prepared:
    actor: RemoteActor | None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    manually_approves_followers: bool = False
    approve_replies: bool = False  # store replies as approved rather than pending


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
    ActivityStreams context (Mastodon drops activities without it, spec §4.3)."""
    context = activity.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if AS_CONTEXT not in contexts and "as:" not in contexts:
        return "the activity's @context lacks the ActivityStreams context"
    if not isinstance(activity.get("type"), str):
        return "the activity has no type"
    if _id(activity.get("actor")) is None:
        return "the activity has no actor"
    if not isinstance(activity.get("id"), str):
        return "the activity has no id"
    return None


def parse_actor(document: JSONObject, now: datetime) -> RemoteActor | None:
    """A remote actor document as the store keeps it (inbox, shared inbox, handle)."""
    actor_id = document.get("id")
    inbox = document.get("inbox")
    if not isinstance(actor_id, str) or not isinstance(inbox, str):
        return None
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    shared = shared or document.get("sharedInbox")
    username = document.get("preferredUsername")
    handle = f"{username}@{urlsplit(actor_id).hostname}" if isinstance(username, str) else None
    return RemoteActor(actor_id, inbox, shared if isinstance(shared, str) else None, handle, now)


def accept_id(actor_id: str, follow_id: str) -> str:
    """A stable Accept id per Follow: a retried handling never makes a second Accept."""
    return f"{actor_id}#accepts/{hashlib.sha256(follow_id.encode()).hexdigest()[:24]}"


def build_accept(our_actor: str, follow: JSONObject, kind: str = "Accept") -> JSONObject:
    """Accept (or Reject) embedding the Follow unchanged, id included: Mastodon matches it by
    id, Misskey by `object.actor` (spec §3.2)."""
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
    """Queue an Accept/Reject to a follower's personal inbox (Mastodon sends them there)."""
    return store.enqueue(str(reply["id"]), [inbox], json.dumps(reply, ensure_ascii=False), now)


@dataclass
class InboxHandler:
    urls: Urls
    store: Store
    settings: Settings
    fetch_document: DocumentFetch
    forget_key: Callable[[str], None] | None = None  # also drops in-memory copies of a key

    @property
    def actor(self) -> str:
        return self.urls.actor()

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
        return self._apply(kind, activity, actor, now, prepared)

    async def _prepare(
        self, kind: str, activity: JSONObject, actor: str, now: datetime
    ) -> Prepared | Outcome | None:
        """The network part: the follower's inboxes for a Follow, the target of a Move."""
        if kind == "Follow" and _id(activity.get("object")) == self.actor:
            document = await self.fetch_document(actor)
            remote = parse_actor(document, now) if document else None
            if remote is None or remote.actor_id != actor:
                # Without the follower's inbox no Accept can go out; 503 makes them retry.
                return Outcome(503, "cannot fetch the follower's actor right now")
            return Prepared(remote)
        if kind == "Move":
            target = _id(activity.get("target"))
            if target is None or _id(activity.get("object")) != actor:
                return Outcome(400, "a Move needs object == actor and a target")
            document = await self.fetch_document(target)
            if document is None:
                return Prepared(None)
            aliases = document.get("alsoKnownAs") or []
            aliases = aliases if isinstance(aliases, list) else [aliases]
            return Prepared(parse_actor(document, now), tuple(a for a in aliases if a))
        return None

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
            outcome: Outcome = handler(activity, actor, now, prepared)
            return outcome

    # --- follows ------------------------------------------------------------------------

    def _on_follow(
        self, activity: JSONObject, actor: str, now: datetime, prepared: Prepared | None
    ) -> Outcome:
        if _id(activity.get("object")) != self.actor or prepared is None or not prepared.actor:
            return Outcome(202, "Follow of someone else ignored")
        remote = prepared.actor
        self.store.put_remote_actor(remote)
        known = self.store.get_follower(actor)
        state: FollowerState = (
            "pending" if self.settings.manually_approves_followers else "accepted"
        )
        if known is not None and known.state == "accepted":
            state = "accepted"  # a repeat Follow re-accepts (Mastodon does, spec §3.3)
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
            )
        )
        if state == "pending":
            return Outcome(202, "Follow awaits approval")
        queued = self.queue_reply(build_accept(self.actor, activity), remote.inbox, now)
        return Outcome(202, "Follow accepted", queued)

    def queue_reply(self, reply: JSONObject, inbox: str, now: datetime) -> int:
        return queue_reply(self.store, reply, inbox, now)

    def _on_undo(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        inner = activity.get("object")
        inner_id = _id(inner)
        inner_type = _type(inner)
        if inner_type is not None and _id(inner.get("actor")) not in (None, actor):  # type: ignore[union-attr]
            return Outcome(202, "Undo of someone else's activity ignored")
        if inner_type == "Follow" and _id(inner.get("object")) not in (None, self.actor):  # type: ignore[union-attr]
            # Mastodon keys the Undo on the inner Follow's object too (undo.rb, spec §3.4).
            return Outcome(202, "Undo of a Follow of someone else ignored")
        follower = self.store.get_follower(actor)
        is_follow = inner_type == "Follow" or (
            follower is not None
            and inner_id is not None
            and inner_id == follower.follow_activity_id
        )
        if is_follow:
            removed = self.store.remove_follower(actor)
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
            return Outcome(202, "interaction removed" if removed else "Undo of nothing known")
        return Outcome(202, "Undo ignored")

    def _on_block(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        if _id(activity.get("object")) == self.actor:
            self.store.remove_follower(actor)  # stop delivering to them (spec §7)
            return Outcome(202, "blocked by a follower: removed")
        return Outcome(202, "Block ignored")

    def _on_delete(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        target = _id(activity.get("object"))
        if target == actor:
            # An account deleted: forget it without fetching anything (spec §4.4).
            self.store.remove_follower(actor)
            self.store.remove_actor_interactions(actor)
            return Outcome(202, "actor deleted")
        stored = self.store.get_interaction(target) if target else None
        if stored is not None and stored.actor_id == actor:
            self.store.remove_interaction(stored.id)
            return Outcome(202, "reply deleted")
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
                if isinstance(entry, dict) and entry.get("owner") == actor and entry.get("id"):
                    # Refetched and verified on next use: a rotated key works at once.
                    if self.forget_key is not None:
                        self.forget_key(str(entry["id"]))
                    else:
                        self.store.delete_key(str(entry["id"]))
            follower = self.store.get_follower(actor)
            if follower is not None:
                self.store.upsert_follower(
                    Follower(
                        actor,
                        remote.inbox,
                        remote.shared_inbox,
                        remote.handle or follower.handle,
                        follower.follow_activity_id,
                        follower.state,
                        follower.created_at,
                        now,
                    )
                )
            return Outcome(202, "actor updated")
        stored = self.store.get_interaction(str(obj.get("id")))
        if stored is None or stored.actor_id != actor or stored.kind != "reply":
            return Outcome(202, "Update of something unknown ignored")
        updated = parse_time(obj.get("updated"))
        if stored.updated and updated and updated <= stored.updated:
            return Outcome(202, "stale Update ignored")
        self.store.update_interaction(
            Interaction(
                stored.id,
                "reply",
                actor,
                stored.object_id,
                stored.state,
                sanitize_html(str(obj.get("content") or "")),
                _url(obj) or stored.url,
                stored.in_reply_to,
                stored.published,
                updated or now,
                json.dumps(obj),
            )
        )
        return Outcome(202, "reply updated")

    def _on_move(
        self, activity: JSONObject, actor: str, now: datetime, prepared: Prepared | None
    ) -> Outcome:
        follower = self.store.get_follower(actor)
        if follower is None:
            return Outcome(202, "Move of someone who does not follow the blog ignored")
        target = prepared.actor if prepared else None
        if target is None:
            return Outcome(202, "Move target unreachable; ignored")
        if actor not in prepared.aliases:  # type: ignore[union-attr]
            # Mastodon requires the target to list the old account (move.rb, spec §8.1).
            return Outcome(202, "Move target does not list the old account; ignored")
        self.store.remove_follower(actor)
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
            raw_json=json.dumps(activity),
        )
        added = self.store.add_interaction(item, now)
        return Outcome(202, f"{kind} stored" if added else f"{kind} already known")

    def _on_like(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        return self._interaction(activity, actor, now, "like")

    def _on_announce(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        return self._interaction(activity, actor, now, "announce")

    def _on_create(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        obj = activity.get("object")
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            return Outcome(202, "Create without an embedded object ignored")
        parent = _id(obj.get("inReplyTo"))
        if not self._ours(parent):
            return Outcome(202, "Create not replying to our posts ignored")
        if _id(obj.get("attributedTo")) != actor or not _same_host(obj["id"], actor):
            return Outcome(202, "reply not written by the sender ignored")
        state = "approved" if self.settings.approve_replies else "pending"
        item = Interaction(
            obj["id"],
            "reply",
            actor,
            str(parent),
            state,  # type: ignore[arg-type]
            sanitize_html(str(obj.get("content") or "")),
            _url(obj),
            parent,
            parse_time(obj.get("published")) or now,
            parse_time(obj.get("updated")),
            json.dumps(obj),
        )
        added = self.store.add_interaction(item, now)
        return Outcome(202, "reply stored" if added else "reply already known")

    def _on_flag(self, activity: JSONObject, actor: str, now: datetime, _: object) -> Outcome:
        objects = activity.get("object")
        ids = [i for i in (map(_id, objects if isinstance(objects, list) else [objects])) if i]
        self.store.add_flag(
            Flag(
                str(activity["id"]),
                actor,
                str(activity.get("content") or "") or None,
                tuple(ids),
                now,
                json.dumps(activity),
            )
        )
        return Outcome(202, "report stored for the author")


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
