"""Old rows are pruned on a schedule by every long-running sender: the background sender of
`inbox serve` and the ASGI app, and the sending round of the serverless adapters (ASGI in
serverless mode, Lambda). Seen ids and finished deliveries older than the retention go;
newer ones, and pending and dead deliveries of any age, stay."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest

from fedipress.adapters.asgi import InboxASGI
from fedipress.adapters.aws_lambda import handle_event
from fedipress.federation.delivery import Retention
from fedipress.federation.store import Store
from tests.inbox.harness import ACTOR, BLOG, Inbox

RETENTION = Retention()
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Seeded:
    """Ids of the seeded rows, by what must happen to them."""

    old_seen: str
    new_seen: str
    old_done: str
    new_done: str
    old_pending: str
    old_dead: str


def _delivery(store: Store, name: str, when: datetime) -> str:
    activity_id = f"{ACTOR}#{name}"
    body = json.dumps({"id": activity_id})
    store.enqueue(activity_id, ["https://remote.example/inbox"], body, when)
    (row,) = [d for d in store.list_deliveries(limit=100) if d.activity_id == activity_id]
    return row.id


def seed(store: Store, now: datetime) -> Seeded:
    """Rows a day past the retention, and a day within it."""
    old_seen, new_seen = now - RETENTION.seen - DAY, now - RETENTION.seen + DAY
    old_done, new_done = now - RETENTION.deliveries - DAY, now - RETENTION.deliveries + DAY
    store.mark_seen("https://remote.example/old", old_seen)
    store.mark_seen("https://remote.example/new", new_seen)
    ids = {name: _delivery(store, name, old_done) for name in ("old", "pending", "dead")}
    ids["new"] = _delivery(store, "new", new_done)
    store.complete(ids["old"], 202, old_done)
    store.complete(ids["new"], 202, new_done)
    store.give_up(ids["dead"], 400, "bad", old_done)
    store.retry_later(ids["pending"], now + timedelta(hours=1), 500, "oops", old_done)
    return Seeded(
        "https://remote.example/old",
        "https://remote.example/new",
        ids["old"],
        ids["new"],
        ids["pending"],
        ids["dead"],
    )


def is_seen(store: Store, activity_id: str, now: datetime) -> bool:
    """Whether the id is recorded; recording it if not, so ask once per id."""
    return not store.mark_seen(activity_id, now)


async def wait_until_pruned(store: Store, seeded: Seeded) -> None:
    deadline = time.monotonic() + 10
    while store.get_delivery(seeded.old_done) is not None:
        assert time.monotonic() < deadline, "the old finished delivery was never pruned"
        await asyncio.sleep(0.02)


def assert_pruned(store: Store, seeded: Seeded, now: datetime) -> None:
    assert store.get_delivery(seeded.old_done) is None
    assert store.get_delivery(seeded.new_done) is not None
    assert store.get_delivery(seeded.old_pending) is not None
    assert store.get_delivery(seeded.old_dead) is not None
    assert not is_seen(store, seeded.old_seen, now)
    assert is_seen(store, seeded.new_seen, now)


@pytest.mark.anyio
async def test_background_sender__prunes_rows_past_the_retention(inbox: Inbox) -> None:
    now = inbox.clock()
    # Given seen ids and deliveries a day past the retention and a day within it
    seeded = seed(inbox.store, now)
    # When the inbox's background sender runs (`inbox serve`, the ASGI app's lifespan)
    inbox.service.start_sender()
    await wait_until_pruned(inbox.store, seeded)
    # Then the old seen id and finished delivery are gone; the rest stays
    assert_pruned(inbox.store, seeded, now)


@pytest.mark.anyio
async def test_serverless_asgi__prunes_in_its_sending_round(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    now = inbox.clock()
    seeded = seed(inbox.store, now)
    # When a serverless ASGI app (no background sender) answers one request
    app = InboxASGI(inbox.service, serverless=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BLOG) as c:
        assert (await c.get("/ap/health")).status_code == 200
    # Then it pruned before returning
    assert_pruned(inbox.store, seeded, now)


@pytest.mark.anyio
async def test_lambda__prunes_in_its_sending_round(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    now = inbox.clock()
    seeded = seed(inbox.store, now)
    # When the Lambda handler answers one event
    event = {
        "version": "2.0",
        "rawPath": "/ap/health",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {"http": {"method": "GET"}},
    }
    assert (await handle_event(inbox.service, event))["statusCode"] == 200
    # Then it pruned before returning
    assert_pruned(inbox.store, seeded, now)
    # and not again within the hour: a newly expired row waits for the next interval
    again = _delivery(inbox.store, "again", now - RETENTION.deliveries - DAY)
    inbox.store.complete(again, 202, now - RETENTION.deliveries - DAY)
    await handle_event(inbox.service, event)
    assert inbox.store.get_delivery(again) is not None
    inbox.clock.offset = RETENTION.interval
    await handle_event(inbox.service, event)
    assert inbox.store.get_delivery(again) is None
