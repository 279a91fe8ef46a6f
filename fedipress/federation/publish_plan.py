"""What to send when the site changes: Create for new posts, Update for changed ones, Delete
for removed ones (FEDERATION.md §5.1-5.7). Pure: the caller loads the published objects and
the store's record, and queues what this returns.

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
    build_create,
    build_delete,
    build_update,
    format_time,
    parse_time,
)
from fedipress.documents.media import JSONObject
from fedipress.federation.store.base import PublishedObject

Change = Literal["create", "update", "delete", "record"]
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
    """One change: the activity to queue (None for 'record': remembered, not sent) and the
    row the store keeps for the object afterwards."""

    change: Change
    object_id: str
    activity: JSONObject | None
    record: PublishedObject


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
) -> list[Planned]:
    """The changes between the site (`live`) and what followers were sent (`known`).

    A first publish (nothing known) records the back catalogue as delivered and sends only
    the newest `backfill` posts, so followers' timelines do not fill with old posts.
    """
    first = not known
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
                )
            )
    live_ids = {o.id for o in live}
    for object_id, previous in sorted(known.items()):
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
                )
            )
    return plans


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
