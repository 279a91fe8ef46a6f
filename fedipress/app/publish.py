"""Publishing: queue Create/Update/Delete for every follower inbox, durably. The one use
case that `fedipress publish`, the deploy hook and the preview's rebuilds all call.

The published objects come from the built output (the outbox and its pages) or from the
live site (`--from URL`, the same documents over HTTP). Each change's row in the published
record and its delivery rows are written in one transaction: a crash between them loses
nothing, and running publish again queues nothing new. The Matrix room's announcements
(`matrix:` in the config) are rows of the same queue, written in the same transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from fedipress.app.wiring import Federation
from fedipress.config import Config
from fedipress.documents.media import JSONObject
from fedipress.documents.urls import Urls
from fedipress.errors import FedipressError
from fedipress.federation.fetch import Fetcher
from fedipress.federation.matrix import queue_announcements
from fedipress.federation.publish_plan import (
    LiveObject,
    Planned,
    pending_moves,
    plan_announces,
    plan_profiles,
    plan_publish,
    topic_audiences,
)
from fedipress.federation.store.base import PublishedObject, Store

Reader = Callable[[str], Awaitable[JSONObject | None]]  # absolute URL -> document


@dataclass(frozen=True)
class PublishResult:
    created: int
    updated: int
    deleted: int
    recorded: int
    queued: int  # delivery rows added, the Matrix room's included
    inboxes: int
    announced: int = 0  # boosts by topic accounts
    undone: int = 0  # boosts undone
    profiles: int = 0  # actor Updates
    moves: int = 0
    announcements: int = 0  # of `queued`, Matrix messages (announcements, edits, redactions)

    @property
    def changes(self) -> int:
        return (
            self.created
            + self.updated
            + self.deleted
            + self.announced
            + self.undone
            + self.profiles
            + self.moves
        )

    def summary(self) -> str:
        """'1 new, 0 edited, 0 removed' and, when there were any, the accounts' changes."""
        line = f"{self.created} new, {self.updated} edited, {self.deleted} removed"
        for count, one, many in (
            (self.announced, "boost by a topic account", "boosts by topic accounts"),
            (self.undone, "boost undone", "boosts undone"),
            (self.profiles, "profile update", "profile updates"),
            (self.moves, "move", "moves"),
        ):
            if count:
                line += f", {count} {one if count == 1 else many}"
        return line


@dataclass(frozen=True)
class LiveAccounts:
    """What the site serves of its accounts: each actor document, and each topic account's
    Announces (from its outbox), by account ('' the main one)."""

    actors: dict[str, JSONObject]
    announces: dict[str, list[JSONObject]]


def output_reader(config: Config, out_dir: Path) -> Reader:
    """Read the site's documents from a build folder, by their URLs."""
    urls = Urls(config)

    async def read(url: str) -> JSONObject | None:
        try:
            data = (out_dir / urls.output_path(url)).read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        document = json.loads(data)
        return document if isinstance(document, dict) else None

    return read


def live_reader(fetcher: Fetcher) -> Reader:
    """Read the site's documents from where it is deployed."""

    async def read(url: str) -> JSONObject | None:
        result = await fetcher.fetch_json(url)
        return result.document

    return read


async def _outbox_items(read: Reader, outbox_url: str) -> list[JSONObject]:
    """Every activity of an outbox, walking its pages, each with the page's @context."""
    outbox = await read(outbox_url)
    if outbox is None:
        raise FedipressError(
            f"no outbox at {outbox_url}",
            hint="build the site first (fedipress build), or check --from",
        )
    found: list[JSONObject] = []
    page_url = outbox.get("first")
    seen: set[str] = set()
    items = outbox.get("orderedItems") or []
    context = outbox.get("@context")
    while True:
        found += [{"@context": context, **item} for item in items if isinstance(item, dict)]
        if not isinstance(page_url, str) or page_url in seen:
            return found
        seen.add(page_url)
        page = await read(page_url)
        if page is None:
            raise FedipressError(f"the outbox page {page_url} is missing")
        items = page.get("orderedItems") or []
        context = page.get("@context")
        page_url = page.get("next")


async def load_live_objects(config: Config, read: Reader) -> list[LiveObject]:
    """Every post object of the outbox, walking its pages."""
    urls = Urls(config)
    objects: list[LiveObject] = []
    for item in await _outbox_items(read, urls.outbox()):
        obj = item.get("object")
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            objects.append(LiveObject(obj["id"], urls.uid_of(obj["id"]), obj))
    return objects


async def load_live_accounts(config: Config, read: Reader) -> LiveAccounts:
    """Each account's actor document, and the Announces of each topic account's outbox."""
    urls = Urls(config)
    actors: dict[str, JSONObject] = {}
    announces: dict[str, list[JSONObject]] = {}
    for account in urls.accounts():
        own = urls.for_account(account)
        actor = await read(own.actor())
        if actor is None:
            raise FedipressError(
                f"no actor at {own.actor()}",
                hint="build the site first (fedipress build), or check --from",
            )
        actors[account] = actor
        if account:
            announces[account] = [
                item
                for item in await _outbox_items(read, own.outbox())
                if item.get("type") == "Announce" and isinstance(item.get("object"), str)
            ]
    return LiveAccounts(actors, announces)


def _publishing_began(config: Config, now: datetime) -> PublishedObject:
    """The record of a first publish: the outbox's id, never a post's, and 'deleted', so
    plan_publish neither sends nor deletes it; it only makes the record non-empty."""
    return PublishedObject(Urls(config).outbox(), "", "", None, "deleted", now, now)


def queue_changes(
    config: Config,
    store: Store,
    live: list[LiveObject],
    now: datetime,
    backfill: int = 0,
    accounts: LiveAccounts | None = None,
    retiring: Mapping[str, str] | None = None,
) -> PublishResult:
    """Plan the changes and queue them, all in one transaction: posts (to the main account's
    followers, and their edits and removals to the topic accounts' that boosted them), the
    topic accounts' boosts, and profile updates and moves of every account, each activity
    signed by its actor (`retiring`: account -> a rotation's old key, by fingerprint); and
    the Matrix room's announcements of new, edited and removed posts."""
    counts = dict.fromkeys(("create", "update", "delete", "record", "remember"), 0)
    counts |= dict.fromkeys(("announce", "undo", "profile", "move"), 0)
    queued = announced = 0
    inboxes: dict[tuple[str, ...], list[str]] = {}
    with store.transaction():
        known = {}
        offset = 0
        while batch := store.list_published(limit=1000, offset=offset):
            known.update({row.object_id: row for row in batch})
            offset += len(batch)
        announces = accounts.announces if accounts else {}
        plans: list[Planned] = plan_publish(
            config,
            live,
            known,
            now,
            backfill=backfill,
            audiences=topic_audiences(config, announces, known),
        )
        if accounts is not None:
            plans += plan_announces(config, announces, known, now)
            plans += plan_profiles(config, accounts.actors, known, now, retiring)
        if not known:
            # Remember that publishing began, even on a site with no posts yet: else its
            # first post would look like back catalogue, recorded and never sent.
            store.put_published(_publishing_began(config, now))
        inboxes[("",)] = store.follower_inboxes()
        # A removed post's likes, boosts and replies go with it (docs/federation.md).
        store.remove_object_interactions([p.object_id for p in plans if p.change == "delete"])
        for plan in plans:
            counts[plan.change] += 1
            audience = inboxes.get(plan.accounts)
            if audience is None:
                audience = inboxes[plan.accounts] = store.follower_inboxes(plan.accounts)
            if plan.activity is not None and audience:
                body = json.dumps(plan.activity, ensure_ascii=False)
                queued += store.enqueue(
                    str(plan.activity["id"]),
                    audience,
                    body,
                    now,
                    signed_by=plan.signed_by,
                    signing_key=plan.signing_key,
                )
            if config.matrix is not None:
                # Posts only: queue_announcements leaves boosts, profiles and moves alone.
                announced += queue_announcements(
                    store, config.matrix, plan.change, plan.object_id, plan.activity, now
                )
            store.put_published(plan.record)
    return PublishResult(
        counts["create"],
        counts["update"],
        counts["delete"],
        counts["record"],
        queued + announced,
        len(set().union(*inboxes.values())),
        counts["announce"],
        counts["undo"],
        counts["profile"],
        counts["move"],
        announced,
    )


def live_site_reader(federation: Federation, url: str | None = None) -> Reader:
    """Read the site's documents from the live site; `url`, when given, must be the site's
    own address: each document's id must be the URL it is read from (the fetch path checks
    it, as Mastodon does), so no other address can serve them."""
    config = federation.config
    if url is not None and urlsplit(url).netloc != urlsplit(config.base_url).netloc:
        raise FedipressError(
            f"--from {url} is not the site's address ({config.base_url})",
            hint="publish from the live site itself, or from a build with --output",
        )
    return live_reader(federation.fetcher)


async def publish(federation: Federation, read: Reader, backfill: int = 0) -> PublishResult:
    """Send new, edited and removed posts to every follower, and each account's boosts,
    profile changes and move to its own: read the published documents, check the target of
    a new move, queue the changes in one transaction, and wake the sender when rows were
    queued. A rotation's old key goes at once when no delivery needs it."""
    config = federation.config
    live = await load_live_objects(config, read)
    accounts = await load_live_accounts(config, read)
    known_moves = await asyncio.to_thread(_move_records, federation.store, config)
    for account, target in pending_moves(config, accounts.actors, known_moves).items():
        await verify_move_target(federation.fetcher, target, Urls(config, account).actor())
    retiring = {account: key.fingerprint for account, key in federation.retiring.items()}
    result = await asyncio.to_thread(
        queue_changes,
        config,
        federation.store,
        live,
        federation.now(),
        backfill,
        accounts,
        retiring,
    )
    for key in retiring.values():
        if not await asyncio.to_thread(federation.store.count_pending_signed_with, key):
            federation.key_done(key)  # announced to nobody, or already delivered
    if result.queued:
        federation.sender.wake.set()
    return result


def _move_records(store: Store, config: Config) -> dict[str, PublishedObject]:
    urls = Urls(config)
    found = {}
    for account in urls.accounts():
        key = urls.for_account(account).move_record()
        record = store.get_published(key)
        if record is not None:
            found[key] = record
    return found


async def verify_move_target(fetcher: Fetcher, target: str, actor_id: str) -> JSONObject:
    """The target actor of a move, after checking that its `alsoKnownAs` lists `actor_id`,
    as every receiver of the Move will (FEDERATION.md §8.1); FedipressError otherwise."""
    result = await fetcher.fetch_json(target)
    if result.document is None:
        raise FedipressError(
            f"cannot fetch the move target {target}: {result.reason or result.failure}",
            hint="check the address; the new account must exist before the move",
        )
    aliases = result.document.get("alsoKnownAs") or []
    aliases = aliases if isinstance(aliases, list) else [aliases]
    names = {a if isinstance(a, str) else a.get("id") for a in aliases if isinstance(a, str | dict)}
    if actor_id not in names:
        raise FedipressError(
            f"{target} does not list {actor_id} in its alsoKnownAs: servers would refuse the Move",
            hint="on the new account, add the old one as an alias first (Mastodon: "
            "Preferences > Account > Moving from a different account), then try again",
        )
    return result.document
