"""The committed record of every ActivityPub object id the site ever published.

Ids are forever (FEDERATION.md §5.5, §5.6, §10.9): Mastodon deletes its copy of a post whose
id answers 404, and refuses a new post at a deleted id. The record lets a build notice an id
that disappeared (a post deleted or renamed), serve a Tombstone there instead of a 404, and
warn. It lives beside fedipress.yaml as `published-ids.json` and belongs in git.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from fedipress.errors import ConfigError, SourceLocation

RECORD_FILE = "published-ids.json"


@dataclass(frozen=True)
class PublishedId:
    uid: str
    type: str  # Note or Article, for the Tombstone's formerType
    published: str  # ISO 8601, when the post first appeared
    deleted: str = ""  # ISO 8601, when a build first found it gone
    version: str = ""  # hash of the object's text when it was last built
    edited: str = ""  # ISO 8601, when a build first saw that text, for an edited post


def parse_record(text: str, path: str) -> dict[str, PublishedId]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"'{RECORD_FILE}' is not valid JSON: {exc.msg}",
            SourceLocation(path, exc.lineno, exc.colno),
            "restore it from git; it records every id the blog ever published",
        ) from exc
    entries = data.get("ids") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"'{RECORD_FILE}' has no 'ids' mapping", SourceLocation(path, 1, 1))
    return {
        uid: PublishedId(
            uid,
            str(e.get("type", "Note")),
            str(e.get("published", "")),
            str(e.get("deleted", "")),
            str(e.get("version", "")),
            str(e.get("edited", "")),
        )
        for uid, e in entries.items()
        if isinstance(e, dict)
    }


def render_record(record: Mapping[str, PublishedId]) -> str:
    ids = {}
    for uid in sorted(record):
        entry = record[uid]
        item = {"type": entry.type, "published": entry.published}
        for key in ("deleted", "version", "edited"):
            if value := getattr(entry, key):
                item[key] = value
        ids[uid] = item
    body = {
        "about": "Every ActivityPub id this blog published. Commit this file; never edit "
        "it by hand. A removed id serves a Tombstone.",
        "ids": ids,
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Reconciled:
    record: dict[str, PublishedId]
    gone: tuple[PublishedId, ...]  # published once, missing now: they get Tombstones
    added: tuple[str, ...]


def reconcile(
    record: Mapping[str, PublishedId], live: Iterable[tuple[str, str, datetime]], now: datetime
) -> Reconciled:
    """Merge the live posts (uid, type, date) into the record. Pure."""
    result = dict(record)
    added = []
    live_uids = set()
    for uid, kind, date in live:
        live_uids.add(uid)
        known = result.get(uid)
        if known is None:
            result[uid] = PublishedId(uid, kind, date.isoformat())
            added.append(uid)
        elif known.deleted or known.type != kind:
            # Back again (an undone deletion) or retyped: the id is live once more.
            result[uid] = replace(known, type=kind, deleted="")
    gone = []
    for uid, entry in sorted(result.items()):
        if uid not in live_uids:
            if not entry.deleted:
                entry = replace(entry, deleted=now.replace(microsecond=0).isoformat())
                result[uid] = entry
            gone.append(entry)
    return Reconciled(result, tuple(gone), tuple(added))


def record_version(
    entry: PublishedId | None, version: str, now: datetime
) -> tuple[PublishedId | None, datetime | None]:
    """The entry with the object's current `version`, and when its text was last edited.

    A version other than the recorded one is an edit made now; the first version recorded
    (a new post, or a record from before versions were kept) is no edit. The edit time is
    what the object serves as `updated`, so that it agrees with the Update a publish sends.
    """
    if entry is None:
        return None, None
    if entry.version and entry.version != version:
        entry = replace(entry, version=version, edited=now.replace(microsecond=0).isoformat())
    elif not entry.version:
        entry = replace(entry, version=version)
    return entry, datetime.fromisoformat(entry.edited) if entry.edited else None
