"""What to send when the site changes: Create for new posts, Update for changed ones, Delete
for removed ones (FEDERATION.md §5.1-5.7); for topic accounts, Announce of their posts and
Undo of it (FEDERATION.md §13); for every account, Update of its actor when its profile
changed and Move when it moved (FEDERATION.md §8.3). Pure: the caller loads the published
documents and the store's record, and queues what this returns.

Activity ids are derived from the object and its version, so a repeated or retried publish
never makes two different activities for one change; receivers de-duplicate by id.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fedipress.config import Config
from fedipress.documents.activitypub import (
    actor_version,
    build_announce,
    build_create,
    build_delete,
    build_move,
    build_undo,
    build_update,
    build_update_actor,
    format_time,
    parse_time,
)
from fedipress.documents.media import JSONObject
from fedipress.documents.urls import Urls
from fedipress.federation.keys import key_id_for
from fedipress.federation.store.base import PublishedObject

# "record": a post recorded as delivered without sending (back catalogue); "remember": the
# same for an actor, a boost or a move.
Change = Literal[
    "create", "update", "delete", "record", "remember", "announce", "undo", "profile", "move"
]
# An object without `published` sorts first; aware, so it compares with the other dates.
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LiveObject:
    """A post object as the site serves it now."""

    id: str
    uid: str
    document: JSONObject

    @property
    def version(self) -> str:
        return version_of(self.document)

    @property
    def published(self) -> datetime:
        return parse_time(self.document.get("published")) or _NEVER

    @property
    def updated(self) -> datetime | None:
        return parse_time(self.document.get("updated"))


@dataclass(frozen=True)
class Planned:
    """One change: the activity to queue (None for 'record': remembered, not sent), the row
    the store keeps for the object afterwards, whose followers receive it (accounts of the
    site, '' the main one), and the key that signs it: its actor's, or, pinned by
    fingerprint, a rotation's old key."""

    change: Change
    object_id: str
    activity: JSONObject | None
    record: PublishedObject
    accounts: tuple[str, ...] = ("",)
    signing_key: str | None = None

    @property
    def signed_by(self) -> str | None:
        actor = self.activity.get("actor") if self.activity is not None else None
        return key_id_for(actor) if isinstance(actor, str) else None


def version_of(document: Mapping[str, Any]) -> str:
    """A hash of what followers see of the object. `updated` is left out: it is set by
    publishing itself, so bumping it alone is no edit."""
    stable = {k: v for k, v in document.items() if k != "updated"}
    blob = json.dumps(stable, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def edit_time(
    object_updated: datetime | None, last_sent: datetime | None, now: datetime
) -> datetime:
    """The `updated` an Update carries: strictly newer than what followers have, or Mastodon
    keeps the old text (FEDERATION.md §5.5). The post's own `updated` when it is newer, else now."""
    floor = (last_sent or datetime.min.replace(tzinfo=now.tzinfo)) + timedelta(seconds=1)
    for candidate in (object_updated, now.replace(microsecond=0)):
        if candidate is not None and candidate >= floor:
            return candidate
    return floor


def plan_publish(
    config: Config,
    live: Sequence[LiveObject],
    known: Mapping[str, PublishedObject],
    now: datetime,
    *,
    backfill: int = 0,
    audiences: Mapping[str, Sequence[str]] | None = None,
) -> list[Planned]:
    """The changes between the site (`live`) and what followers were sent (`known`).

    A first publish (nothing known) records the back catalogue as delivered and sends only
    the newest `backfill` posts, so followers' timelines do not fill with old posts.
    `audiences` names, by object id, the topic accounts whose followers got the post as a
    boost: its Update and Delete reach them too (FEDERATION.md §13).
    """
    first = not known
    extra = audiences or {}

    def reach(object_id: str) -> tuple[str, ...]:
        return ("", *dict.fromkeys(extra.get(object_id, ())))

    plans: list[Planned] = []
    newest_first = sorted(live, key=lambda o: (o.published, o.id), reverse=True)
    send_now = {o.id for o in newest_first[:backfill]} if first else set()
    for obj in sorted(live, key=lambda o: (o.published, o.id)):  # oldest first: arrival order
        previous = known.get(obj.id)
        if previous is None or previous.state == "deleted":
            if first and obj.id not in send_now:
                plans.append(Planned("record", obj.id, None, _row(obj, obj.updated, None, now)))
                continue
            create = build_create(config, obj.document)
            if previous is not None:
                # Back after a Delete: `#create` went out before, and receivers (and our
                # queue) drop an activity id they have seen.
                create["id"] = f"{create['id']}-{obj.version}-{_cycle(previous)}"
            plans.append(
                Planned("create", obj.id, create, _row(obj, obj.updated, now, now, previous))
            )
        elif previous.version != obj.version:
            when = edit_time(obj.updated, previous.updated or _published(previous, obj), now)
            document = copy.deepcopy(obj.document)
            document["updated"] = format_time(when)
            # From-and-to versions: an edit back to earlier text (A, B, C, B) still gets an
            # id of its own, and the same change always gets the same id.
            change = f"{previous.version[:8]}-{obj.version}"
            plans.append(
                Planned(
                    "update",
                    obj.id,
                    build_update(config, document, change),
                    _row(obj, when, now, now, previous),
                    reach(obj.id),
                )
            )
    live_ids = {o.id for o in live}
    posts = Urls(config).absolute("/ap/posts/")
    for object_id, previous in sorted(known.items()):
        if not object_id.startswith(posts):
            continue  # the record of an actor, an Announce or a Move: planned elsewhere
        if previous.state == "live" and object_id not in live_ids:
            plans.append(
                Planned(
                    "delete",
                    object_id,
                    _delete(config, object_id, previous, now),
                    PublishedObject(
                        object_id,
                        previous.uid,
                        previous.version,
                        previous.updated,
                        "deleted",
                        previous.first_published_at,
                        now,
                        previous.type,
                    ),
                    reach(object_id),
                )
            )
    return plans


def topic_audiences(
    config: Config,
    announces: Mapping[str, Sequence[JSONObject]],
    known: Mapping[str, PublishedObject],
) -> dict[str, list[str]]:
    """Object id -> the topic accounts that boost it now (`announces`, from their outboxes)
    or boosted it last (the record): whose followers an Update or Delete of it must reach."""
    urls = Urls(config)
    found: dict[str, list[str]] = {}
    for account, items in announces.items():
        for item in items:
            found.setdefault(str(item["object"]), []).append(account)
    for account in urls.accounts()[1:]:
        prefix = urls.for_account(account).absolute(f"/ap/topics/{account}/announces/")
        for object_id, record in known.items():
            if object_id.startswith(prefix) and record.state == "live":
                post = urls.post(record.uid)
                if account not in found.get(post, []):
                    found.setdefault(post, []).append(account)
    return found


def plan_announces(
    config: Config,
    announces: Mapping[str, Sequence[JSONObject]],
    known: Mapping[str, PublishedObject],
    now: datetime,
) -> list[Planned]:
    """Announce, by each topic account, of the posts newly in its outbox; Undo of those that
    left it (removed, or no longer tagged for it). An account publishing for the first time
    (no record of its actor) records its outbox without sending, like a first publish.

    The record's `uid` is the post's, `version` the suffix of the Announce id sent, so the
    Undo embeds exactly what was sent; a boost undone and made again gets a new id."""
    urls = Urls(config)
    plans: list[Planned] = []
    for account, items in announces.items():
        topic = urls.for_account(account)
        new_account = topic.actor() not in known
        live_ids = set()
        for item in sorted(items, key=lambda i: (str(i.get("published", "")), str(i["id"]))):
            announce_id = str(item["id"])
            live_ids.add(announce_id)
            previous = known.get(announce_id)
            if previous is not None and previous.state == "live":
                continue
            uid = urls.uid_of(str(item["object"]))
            suffix = ""
            if previous is not None:
                # Receivers drop an activity id they have seen: a new one per boost.
                suffix = hashlib.sha256(
                    f"{previous.version}{previous.last_delivered_at}".encode()
                ).hexdigest()[:8]
            activity = {**copy.deepcopy(dict(item)), "id": _suffixed(announce_id, suffix)}
            first = previous.first_published_at if previous else now
            record = PublishedObject(announce_id, uid, suffix, None, "live", first, now)
            if new_account and previous is None:
                plans.append(Planned("remember", announce_id, None, record, (account,)))
            else:
                plans.append(Planned("announce", announce_id, activity, record, (account,)))
        prefix = topic.absolute(f"/ap/topics/{account}/announces/")
        for announce_id, previous in sorted(known.items()):
            if not announce_id.startswith(prefix) or previous.state != "live":
                continue
            if announce_id in live_ids:
                continue
            sent = build_announce_like(config, account, previous)
            gone = PublishedObject(
                announce_id,
                previous.uid,
                previous.version,
                None,
                "deleted",
                previous.first_published_at,
                now,
            )
            plans.append(Planned("undo", announce_id, build_undo(sent), gone, (account,)))
    return plans


def build_announce_like(config: Config, account: str, record: PublishedObject) -> JSONObject:
    """The Announce a record says was sent (its id with the suffix it had)."""
    urls = Urls(config)
    announce = build_announce(config, account, urls.post(record.uid))
    announce["id"] = _suffixed(str(announce["id"]), record.version)
    return announce


def _suffixed(activity_id: str, suffix: str) -> str:
    return f"{activity_id}-{suffix}" if suffix else activity_id


def plan_profiles(
    config: Config,
    actors: Mapping[str, JSONObject],
    known: Mapping[str, PublishedObject],
    now: datetime,
    retiring: Mapping[str, str] | None = None,
) -> list[Planned]:
    """Update of each actor whose document changed since it was last sent (name, summary,
    avatar, fields, alsoKnownAs, movedTo, key…), to that account's followers, once per
    change; Move to them when the actor newly names a `movedTo`.

    An actor never recorded is recorded without sending (what followers have is unknown),
    unless `retiring` (account -> fingerprint of a rotation's old key) says its key changed:
    the Update is then sent, signed with the old key, which servers that cached it accept
    (FEDERATION.md §4.6). The actor's record keeps its account in `uid`; the Move's record
    (`Urls.move_record()`) keeps the target in `uid`."""
    urls = Urls(config)
    old_keys = retiring or {}
    plans: list[Planned] = []
    for account, actor in actors.items():
        actor_id = urls.for_account(account).actor()
        version = actor_version(actor)
        previous = known.get(actor_id)
        record = PublishedObject(
            actor_id,
            account,
            version,
            None,
            "live",
            previous.first_published_at if previous else now,
            now,
        )
        pinned = old_keys.get(account)
        if previous is not None and previous.version == version:
            pass
        elif previous is None and pinned is None:
            plans.append(Planned("remember", actor_id, None, record, (account,)))
        else:
            update = build_update_actor(config, actor)
            plans.append(Planned("profile", actor_id, update, record, (account,), pinned))
        plans += _plan_move(config, account, actor, known, now)
    return plans


def _plan_move(
    config: Config,
    account: str,
    actor: JSONObject,
    known: Mapping[str, PublishedObject],
    now: datetime,
) -> list[Planned]:
    urls = Urls(config).for_account(account)
    key = urls.move_record()
    previous = known.get(key)
    target = actor.get("movedTo")
    sent_to = previous.uid if previous is not None and previous.state == "live" else None
    if not isinstance(target, str) or not target:
        if sent_to is None:
            return []
        # The move was cancelled after its Move went out: nothing can call it back.
        gone = PublishedObject(key, sent_to, "", None, "deleted", previous.first_published_at, now)  # type: ignore[union-attr]
        return [Planned("remember", key, None, gone, (account,))]
    if target == sent_to:
        return []
    number = int(hashlib.sha256(target.encode()).hexdigest()[:8], 16)
    move = build_move(config, target, number, account)
    first = previous.first_published_at if previous else now
    record = PublishedObject(key, target, str(number), None, "live", first, now)
    return [Planned("move", key, move, record, (account,))]


def pending_moves(
    config: Config, actors: Mapping[str, JSONObject], known: Mapping[str, PublishedObject]
) -> dict[str, str]:
    """Account -> the `movedTo` target whose Move has not been sent yet."""
    found = {}
    for account, actor in actors.items():
        target = actor.get("movedTo")
        previous = known.get(Urls(config).for_account(account).move_record())
        sent_to = previous.uid if previous is not None and previous.state == "live" else None
        if isinstance(target, str) and target and target != sent_to:
            found[account] = target
    return found


def _cycle(previous: PublishedObject) -> str:
    """A short mark of a publish/delete cycle: it changes with each delivery of the object, so
    a post deleted, restored and deleted again gets new activity ids each time."""
    stamp = previous.last_delivered_at.isoformat() if previous.last_delivered_at else ""
    return hashlib.sha256(f"{previous.version}{stamp}".encode()).hexdigest()[:8]


def _delete(config: Config, object_id: str, previous: PublishedObject, now: datetime) -> JSONObject:
    # The Tombstone names the type the object had, as Mastodon's delete_note_serializer does.
    delete = build_delete(config, object_id, previous.type, now)
    delete["id"] = f"{delete['id']}-{_cycle(previous)}"
    return delete


def _published(previous: PublishedObject, obj: LiveObject) -> datetime:
    return obj.published if obj.published != _NEVER else previous.first_published_at


def _row(
    obj: LiveObject,
    updated: datetime | None,
    delivered: datetime | None,
    now: datetime,
    previous: PublishedObject | None = None,
) -> PublishedObject:
    first = previous.first_published_at if previous is not None else now
    kind = obj.document.get("type")
    return PublishedObject(
        obj.id,
        obj.uid,
        obj.version,
        updated,
        "live",
        first,
        delivered,
        kind if isinstance(kind, str) else "Note",
    )
