"""Outbound delivery: the retry policy on values, and the Sender against real loopback servers
(the fake remote with scripted answers, and a server that never answers)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from fedipress.cli.support import PrintableFormatter
from fedipress.federation.delivery import INTERRUPTED, RetryPolicy, Sender, parse_retry_after
from fedipress.federation.keys import RSAPrivateKey, SigningKey
from fedipress.federation.matrix import CHANNEL, Job, MatrixChannel
from fedipress.federation.store import Follower
from tests.inbox.harness import ACTOR, BLOG, Clock, Database, Inbox, verify_blog_request
from tests.inbox.remote import (
    AS,
    RemoteServer,
    Reply,
    StreamedAnswers,
    silent_server,
    streaming_server,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()


class FixedRandom(random.Random):
    """A random source that always draws `value`: the jitter's bounds, exactly."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


# --- RetryPolicy (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "done"),
        (202, "done"),
        (204, "done"),
        (410, "gone"),
        (400, "dead"),
        (403, "dead"),
        (404, "dead"),
        (422, "dead"),
        (401, "retry"),  # Mastodon retries these three 4xx (delivery_worker.rb)
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (501, "dead"),
        (None, "retry"),  # no response at all: timeout, refused connection
    ],
)
def test_retry_policy_verdict__by_status(status: int | None, verdict: str) -> None:
    assert POLICY.verdict(status) == verdict


def test_retry_policy_next_attempt__grows_within_jitter_bounds() -> None:
    low, high = [], []
    for attempts in range(1, 9):
        # Given the smallest and the largest jitter draw
        earliest = POLICY.next_attempt(attempts, NOW, NOW, rng=FixedRandom(0.0))
        latest = POLICY.next_attempt(attempts, NOW, NOW, rng=FixedRandom(0.999999))
        assert earliest is not None and latest is not None
        # Then the delay is base * factor**(n-1) (capped), plus at most 25 % of it
        expected = min(timedelta(seconds=30) * 2.5 ** (attempts - 1), timedelta(hours=12))
        assert earliest - NOW == expected
        assert expected < latest - NOW <= expected * 1.25
        low.append(earliest - NOW)
        high.append(latest - NOW)
    assert low == sorted(low) and len(set(low)) == len(low)  # strictly growing
    assert low[0] == timedelta(seconds=30) and high[-1] <= timedelta(hours=15)
    # And a real random source stays within the same bounds
    rng = random.Random(7)
    for attempts in range(1, 9):
        when = POLICY.next_attempt(attempts, NOW, NOW, rng=rng)
        assert when is not None and low[attempts - 1] <= when - NOW <= high[attempts - 1]


def test_retry_policy_next_attempt__honours_retry_after_within_a_day() -> None:
    # Given a Retry-After longer than the backoff
    when = POLICY.next_attempt(1, NOW, NOW, timedelta(hours=2), rng=FixedRandom(0.0))
    assert when == NOW + timedelta(hours=2)
    # Given one shorter than the backoff: the backoff wins
    when = POLICY.next_attempt(3, NOW, NOW, timedelta(seconds=1), rng=FixedRandom(0.0))
    assert when == NOW + timedelta(seconds=187.5)
    # Given an absurd one: capped at a day
    when = POLICY.next_attempt(1, NOW, NOW, timedelta(days=30), rng=FixedRandom(0.0))
    assert when == NOW + timedelta(days=1)


def test_parse_retry_after__seconds_and_http_dates() -> None:
    assert parse_retry_after("120", NOW) == timedelta(seconds=120)
    assert parse_retry_after(" 0 ", NOW) == timedelta(0)
    assert parse_retry_after("Sat, 28 Nov 2026 12:05:00 GMT", NOW) == timedelta(minutes=5)
    assert parse_retry_after("Sat, 28 Nov 2026 11:00:00 GMT", NOW) == timedelta(0)  # past
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after("", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_retry_policy__gives_up_after_about_three_days() -> None:
    # Given a delivery that fails at every attempt, retried when the policy says
    now, attempts = NOW, 0
    while True:
        attempts += 1
        when = POLICY.next_attempt(attempts, NOW, now, rng=random.Random(attempts))
        if when is None:
            break
        assert when > now
        now = when
    # Then it is given up after about three days (Mastodon: ≈2.6 days, FEDERATION.md §6.2)
    assert timedelta(days=3) <= now - NOW <= timedelta(days=3, hours=12)
    assert 10 <= attempts <= 20
    # And a delivery queued three days ago gets no further attempt
    assert POLICY.next_attempt(1, NOW - timedelta(days=3), NOW) is None
    assert POLICY.next_attempt(1, NOW - timedelta(days=2), NOW) is not None


# --- Sender against loopback servers -----------------------------------------------------------


@dataclass
class Senders:
    """Makes Senders over real stores, signed with the blog key, on a shared test clock."""

    blog_key: RSAPrivateKey
    clock: Clock = field(default_factory=Clock)
    made: list[Sender] = field(default_factory=list)

    def __call__(self, store: Any, **options: Any) -> Sender:
        sender = Sender(
            store,
            SigningKey(f"{ACTOR}#main-key", self.blog_key),
            f"{BLOG}/",
            allow_private=True,
            now=self.clock,
            **options,
        )
        self.made.append(sender)
        return sender


@pytest.fixture
async def senders(blog_key: RSAPrivateKey) -> AsyncIterator[Senders]:
    made = Senders(blog_key)
    yield made
    for sender in made.made:
        await sender.aclose()


def queue(db: Database, inbox: str, n: int = 1, now: datetime | None = None) -> str:
    """Queue a Create for `inbox`; returns the delivery id."""
    activity_id = f"{ACTOR}#create/{n}"
    body = json.dumps({"@context": AS, "id": activity_id, "type": "Create", "actor": ACTOR})
    db.store.enqueue(activity_id, [inbox], body, now or datetime.now(UTC))
    (delivery,) = [d for d in db.store.list_deliveries() if d.activity_id == activity_id]
    return delivery.id


@pytest.mark.anyio
async def test_sender__500_is_retried_and_recovers(
    database: Database, remote: RemoteServer, senders: Senders
) -> None:
    sender, clock = senders(database.store), senders.clock
    # Given an inbox that fails once with 500, then works
    inbox = remote.script("/users/alice/inbox", Reply(500), Reply(202))
    delivery_id = queue(database, inbox)
    # When the sender drains the queue
    (first,) = await sender.drain()
    # Then it is kept for a retry, later (≥ 30 s), not lost
    assert (first.status, first.verdict) == (500, "retry")
    row = database.store.get_delivery(delivery_id)
    assert row is not None and (row.state, row.attempts, row.last_status) == ("pending", 1, 500)
    assert row.next_attempt_at >= clock() + timedelta(seconds=29)
    assert await sender.drain() == []  # not due yet
    # When the retry is due
    clock.offset = row.next_attempt_at - datetime.now(UTC) + timedelta(seconds=1)
    (second,) = await sender.drain()
    # Then it is delivered, signed each time, with the same body
    assert (second.status, second.verdict) == (202, "done")
    row = database.store.get_delivery(delivery_id)
    assert row is not None and (row.state, row.attempts) == ("done", 2)
    sent = remote.posts("/users/alice/inbox")
    assert len(sent) == 2 and sent[0].body == sent[1].body
    assert (
        await verify_blog_request(sent[1], remote, senders.blog_key, clock()) == f"{ACTOR}#main-key"
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    "retry_after", ["3600", (NOW + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")]
)
async def test_sender__429_honours_retry_after(
    senders: Senders, sqlite_db: Database, remote: RemoteServer, retry_after: str
) -> None:
    send, clock = senders(sqlite_db.store), senders.clock
    clock.offset = NOW - datetime.now(UTC)  # the HTTP date is an hour after NOW
    # Given an inbox that answers 429 with Retry-After of an hour (as seconds or a date)
    inbox = remote.script("/inbox", Reply(429, (("retry-after", retry_after),)))
    delivery_id = queue(sqlite_db, inbox, now=clock())
    # When the sender drains the queue
    (outcome,) = await send.drain()
    # Then the next attempt waits the hour (the backoff alone would be ≤ 37.5 s)
    assert (outcome.status, outcome.verdict) == (429, "retry")
    row = sqlite_db.store.get_delivery(delivery_id)
    assert row is not None and row.state == "pending"
    wait = row.next_attempt_at - clock()
    assert timedelta(minutes=59) <= wait <= timedelta(hours=1)


@pytest.mark.anyio
async def test_sender__410_from_a_personal_inbox_removes_the_follower(inbox: Inbox) -> None:
    remote, store = inbox.remote, inbox.store
    now = datetime.now(UTC)
    # Given carol (personal inbox answers 410) and dave (his shared inbox answers 410)
    for name, shared in (("carol", None), ("dave", f"{remote.base}/dave-shared")):
        actor = remote.actor_id(name)
        follower = Follower(
            actor, remote.inbox(name), shared, None, f"{actor}#f", "accepted", now, now
        )
        store.upsert_follower(follower)
    remote.script("/users/carol/inbox", Reply(410))
    remote.script("/dave-shared", Reply(410))
    queue(inbox.db, remote.inbox("carol"), 1)
    queue(inbox.db, f"{remote.base}/dave-shared", 2)
    # When the sender delivers to both
    outcomes = await inbox.service.sender.drain()
    # Then both deliveries stop; carol's account is gone, a shared inbox speaks for nobody
    assert sorted(o.verdict for o in outcomes) == ["gone", "gone"]
    assert store.get_follower(remote.actor_id("carol")) is None
    assert store.get_follower(remote.actor_id("dave")) is not None
    assert {d.state for d in store.list_deliveries()} == {"dead"}


@pytest.mark.anyio
async def test_sender__400_is_dead_at_once(
    senders: Senders, sqlite_db: Database, remote: RemoteServer
) -> None:
    send = senders(sqlite_db.store)
    # Given an inbox that refuses the activity as malformed
    delivery_id = queue(sqlite_db, remote.script("/inbox", Reply(400, body=b"bad")))
    # When the sender drains the queue
    (outcome,) = await send.drain()
    # Then the delivery is dead after one attempt, with the answer kept
    assert (outcome.status, outcome.verdict) == (400, "dead")
    row = sqlite_db.store.get_delivery(delivery_id)
    assert row is not None and (row.state, row.attempts, row.last_error) == ("dead", 1, "bad")
    assert len(remote.posts()) == 1


@pytest.mark.anyio
async def test_sender__a_server_that_never_answers_times_out_and_is_retried(
    senders: Senders, sqlite_db: Database
) -> None:
    send, clock = senders(sqlite_db.store, timeout=httpx.Timeout(0.3)), senders.clock
    with silent_server() as base:
        # Given an inbox whose server accepts the connection and never answers
        delivery_id = queue(sqlite_db, f"{base}/inbox")
        # When the sender drains the queue
        (outcome,) = await send.drain()
    # Then the attempt times out and is retried later
    assert (outcome.status, outcome.verdict) == (None, "retry")
    assert "Timeout" in outcome.error
    row = sqlite_db.store.get_delivery(delivery_id)
    assert row is not None and row.state == "pending" and row.attempts == 1
    assert row.next_attempt_at > clock()


@pytest.mark.anyio
async def test_sender__limits_concurrent_requests_per_host(
    senders: Senders, sqlite_db: Database, remote: RemoteServer
) -> None:
    send = senders(sqlite_db.store, per_host=2)
    # Given six deliveries to one slow host
    for n in range(6):
        queue(sqlite_db, remote.script(f"/users/u{n}/inbox", Reply(202, delay=0.1)), n)
    # When the sender drains the queue
    outcomes = await send.drain()
    # Then all are delivered, never more than two at a time
    assert [o.verdict for o in outcomes] == ["done"] * 6
    assert len(remote.posts()) == 6
    assert remote.max_active == 2


class QueuesDuringTheLastClaim:
    """A real store, except that the drain's final, empty claim is followed at once by a new
    row and a wake-up: an inbox request queueing an Accept while the sender is draining."""

    def __init__(self, db: Database, inbox: str, loop: asyncio.AbstractEventLoop) -> None:
        self.db, self.inbox, self.loop = db, inbox, loop
        self.sender: Sender | None = None
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db.store, name)

    def claim_due(self, *args: Any) -> Any:
        claimed = self.db.store.claim_due(*args)
        if not claimed and not self.raced and self.sender is not None:
            self.raced = True
            queue(self.db, self.inbox)
            self.loop.call_soon_threadsafe(self.sender.wake.set)
        return claimed


@pytest.mark.anyio
async def test_sender_run__a_wake_during_a_drain_is_not_lost(
    sqlite_db: Database, remote: RemoteServer, senders: Senders
) -> None:
    # Given a running sender, and a row queued (with a wake-up) just as a drain ends
    store = QueuesDuringTheLastClaim(sqlite_db, remote.inbox("alice"), asyncio.get_running_loop())
    sender = store.sender = senders(store)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop, idle=5.0))
    try:
        # Then the row goes out at once, not after the 5 s idle wait
        await remote.wait_for_posts(1, "/users/alice/inbox", timeout=1.5)
        assert store.raced
    finally:
        stop.set()
        await task


@pytest.mark.anyio
async def test_sender__a_host_failing_for_days_is_probed_then_recovers(
    sqlite_db: Database, remote: RemoteServer, senders: Senders
) -> None:
    store, clock = sqlite_db.store, senders.clock
    sender = senders(store, probe_interval=timedelta(hours=6))
    host = urlsplit(remote.base).netloc
    # Given an inbox that answers 500 on seven different days
    inbox = remote.script("/users/alice/inbox", Reply(500))
    for day in range(7):
        clock.offset = timedelta(days=day)
        queue(sqlite_db, inbox, n=100 + day, now=clock())
        await sender.drain()
    assert store.is_host_unavailable(host)
    sent_while_failing = len(remote.posts())
    # When three more deliveries are due: only one goes out, as the probe
    clock.offset = timedelta(days=7, hours=1)
    for n in range(3):
        queue(sqlite_db, inbox, n=200 + n, now=clock())
    outcomes = await sender.drain()
    held = [o for o in outcomes if o.error == "host unavailable"]
    assert len(remote.posts()) - sent_while_failing == 1
    assert len(held) >= 2
    # When the host works again, the next probe succeeds and it is available at once
    remote.script("/users/alice/inbox", Reply(202))
    clock.offset = timedelta(days=8)
    await sender.drain()
    assert not store.is_host_unavailable(host)
    clock.offset = timedelta(days=9)
    await sender.drain()
    assert all(
        row.state == "done" for row in store.list_deliveries() if "#create/2" in row.activity_id
    )
    assert store.get_host(host) is not None


def _written(answers: StreamedAnswers, count: int = 1) -> list[int]:
    """The body bytes the streaming server wrote, once its `count` answers have ended."""
    deadline = time.monotonic() + 10
    while len(answers.written) < count:
        assert time.monotonic() < deadline, "the streaming server is still writing"
        time.sleep(0.01)
    return answers.written


@pytest.mark.anyio
async def test_sender__a_huge_error_body_is_read_only_to_a_few_kilobytes(
    senders: Senders, sqlite_db: Database
) -> None:
    send = senders(sqlite_db.store)
    size = 64 * 1024 * 1024
    with streaming_server(500, size) as answers:
        # Given an inbox that answers 500 with a 64 MB body (made as it is sent)
        delivery_id = queue(sqlite_db, f"{answers.base}/inbox")
        # When the sender drains the queue
        with anyio.fail_after(30):
            (outcome,) = await send.drain()
        (written,) = _written(answers)
    # Then it stopped reading after a few KB and hung up: the rest was never sent
    assert written < size // 2
    # and the delivery is retried, with the start of the answer as its error
    assert (outcome.status, outcome.verdict) == (500, "retry")
    row = sqlite_db.store.get_delivery(delivery_id)
    assert row is not None and row.state == "pending"
    assert row.last_error == ("overflow " * 60)[:500]


@pytest.mark.anyio
async def test_sender__an_answer_trickling_forever_is_given_up_at_the_deadline(
    senders: Senders, sqlite_db: Database
) -> None:
    # Given a sender with a 1 s deadline, and per-read timeouts that a trickle never trips
    send = senders(sqlite_db.store, deadline=1.0, timeout=httpx.Timeout(5.0))
    with streaming_server(500, None, chunk=b"x", delay=0.05) as answers:
        # and an inbox that answers 500, then sends its body a byte every 50 ms, endlessly
        delivery_id = queue(sqlite_db, f"{answers.base}/inbox")
        # When the sender drains the queue
        with anyio.fail_after(10):
            (outcome,) = await send.drain()
    # Then it gave up reading at the deadline, kept what arrived, and will retry
    assert (outcome.status, outcome.verdict) == (500, "retry")
    assert 0 < len(outcome.error) < 500 and set(outcome.error) == {"x"}
    row = sqlite_db.store.get_delivery(delivery_id)
    assert row is not None and row.state == "pending"


@pytest.mark.anyio
async def test_sender__no_status_by_the_deadline_is_a_retry(
    senders: Senders, sqlite_db: Database
) -> None:
    send = senders(sqlite_db.store, deadline=1.0, timeout=httpx.Timeout(5.0))
    with silent_server() as base:
        # Given an inbox that never answers, and a sender with a 1 s deadline
        delivery_id = queue(sqlite_db, f"{base}/inbox")
        # When the sender drains the queue
        with anyio.fail_after(10):
            (outcome,) = await send.drain()
    # Then the attempt ends at the deadline and is retried
    assert (outcome.status, outcome.verdict) == (None, "retry")
    assert outcome.error == "no answer within 1.0 s"
    row = sqlite_db.store.get_delivery(delivery_id)
    assert row is not None and (row.state, row.last_error) == ("pending", outcome.error)


@pytest.mark.anyio
async def test_sender__an_accepted_post_with_a_short_body_is_done(
    senders: Senders, sqlite_db: Database
) -> None:
    send = senders(sqlite_db.store)
    # Given an inbox that answers 202, says its body is 1 MB, sends 10 bytes and hangs up
    with streaming_server(202, 10, declared=1_000_000) as answers:
        delivery_id = queue(sqlite_db, f"{answers.base}/inbox")
        (outcome,) = await send.drain()
    # Then the 202 counts: the activity was accepted, sending it again would duplicate it
    assert (outcome.status, outcome.verdict) == (202, "done")
    row = sqlite_db.store.get_delivery(delivery_id)
    assert row is not None and row.state == "done"


@pytest.mark.anyio
async def test_sender__two_servers_on_one_address_are_two_hosts(
    sqlite_db: Database, remote: RemoteServer, senders: Senders
) -> None:
    store, clock = sqlite_db.store, senders.clock
    sender = senders(store)
    with streaming_server(500, 0) as failing:
        # Given a server on 127.0.0.1 that answers 500 on seven different days
        for day in range(7):
            clock.offset = timedelta(days=day)
            queue(sqlite_db, f"{failing.base}/inbox", n=100 + day, now=clock())
            await sender.drain()
        failing_host = urlsplit(failing.base).netloc
        assert store.is_host_unavailable(failing_host)
        # When three deliveries are due to another server on 127.0.0.1, on another port
        clock.offset = timedelta(days=7, hours=1)
        for n in range(3):
            queue(
                sqlite_db, remote.script(f"/users/u{n}/inbox", Reply(202)), n=200 + n, now=clock()
            )
        outcomes = await sender.drain()
    # Then all three go out: the failing server's state is its own
    assert [o.verdict for o in outcomes if o.inbox.startswith(remote.base)] == ["done"] * 3
    assert len(remote.posts()) == 3
    assert not store.is_host_unavailable(urlsplit(remote.base).netloc)
    # and the working server's success does not make the failing one available
    assert store.is_host_unavailable(failing_host)


@pytest.mark.anyio
async def test_sender__logs_each_outcome_escaping_what_the_server_wrote(
    sqlite_db: Database, remote: RemoteServer, senders: Senders, caplog: pytest.LogCaptureFixture
) -> None:
    # Given three inboxes: one accepts, one fails for now, one refuses for good with an
    # answer that carries a terminal escape sequence
    ok = remote.script("/users/alice/inbox", Reply(202))
    later = remote.script("/users/bob/inbox", Reply(503))
    never = remote.script("/users/carol/inbox", Reply(400, body=b"\x1b[31mno\x1b[0m"))
    for n, inbox in enumerate((ok, later, never)):
        queue(sqlite_db, inbox, n)
    # When the sender drains the queue
    with caplog.at_level(logging.INFO, logger="fedipress.delivery"):
        await senders(sqlite_db.store).drain()
    # Then each outcome has a line at a level that says what to do about it
    lines = {(r.levelname, r.getMessage().split(" ", 1)[0]) for r in caplog.records}
    assert ("INFO", "delivered") in lines
    assert ("INFO", "will") in lines  # will retry
    assert ("WARNING", "gave") in lines  # gave up
    # And a terminal shows the remote's escape codes as text, not as commands
    handler_output = PrintableFormatter("%(message)s")
    shown = [handler_output.format(r) for r in caplog.records if r.levelname == "WARNING"]
    assert shown and all("\x1b" not in line and "\\x1b" in line for line in shown)


# --- drains with a time budget (serverless invocations) -----------------------------------------


@pytest.mark.anyio
async def test_sender_drain__stops_at_its_budget_and_the_next_drain_resumes(
    senders: Senders, database: Database, remote: RemoteServer
) -> None:
    # Given six deliveries to one host, sent one at a time, and a clock on which each
    # request the server receives takes ten seconds
    for n in range(6):
        queue(database, remote.inbox(f"u{n}"), n)
    sender = senders(database.store, per_host=1)
    sender.monotonic = lambda: 10.0 * len(remote.posts())
    # When a drain with a 35-second budget runs
    first = await sender.drain(budget=35)
    # Then it sends four (starting at 0, 10, 20 and 30 s) and stops: the other two were
    # claimed with them but never sent, and are handed back as they were
    assert [o.verdict for o in first] == ["done"] * 4
    rows = database.store.list_deliveries()
    waiting = [d for d in rows if d.state == "pending"]
    assert len(waiting) == 2
    assert {(d.attempts, d.lease_owner, d.last_error) for d in waiting} == {(0, None, None)}
    assert all(d.next_attempt_at <= senders.clock() for d in waiting)
    # When the next invocation drains with the same budget
    second = await sender.drain(budget=35)
    # Then it sends exactly the two that were left: every inbox got its delivery once
    assert [o.verdict for o in second] == ["done"] * 2
    assert {o.inbox for o in first} | {o.inbox for o in second} == {
        remote.inbox(f"u{n}") for n in range(6)
    }
    received = [post.path for post in remote.posts()]
    assert sorted(received) == sorted(f"/users/u{n}/inbox" for n in range(6))
    assert {(d.state, d.attempts) for d in database.store.list_deliveries()} == {("done", 1)}
    assert await sender.drain(budget=35) == []


@pytest.mark.anyio
async def test_sender_drain__a_request_cut_off_by_the_budget_is_due_again_at_once(
    senders: Senders, sqlite_db: Database
) -> None:
    send, clock = senders(sqlite_db.store), senders.clock
    with silent_server() as base:
        # Given an inbox whose server never answers, and a drain with a short budget
        delivery_id = queue(sqlite_db, f"{base}/inbox")
        # When the budget runs out while the POST waits for its answer
        (outcome,) = await send.drain(budget=0.3)
    # Then the request is cut off and recorded as such: due again at once, without backoff
    # and without counting as a failure of the host (it said nothing)
    assert (outcome.status, outcome.verdict, outcome.error) == (None, "retry", INTERRUPTED)
    row = sqlite_db.store.get_delivery(delivery_id)
    assert row is not None and (row.state, row.attempts, row.lease_owner) == ("pending", 1, None)
    assert row.next_attempt_at <= clock()
    assert sqlite_db.store.get_host(urlsplit(base).netloc) is None
    (again,) = sqlite_db.store.claim_due(clock(), 10, 60, "next-invocation")
    assert again.id == delivery_id


@pytest.mark.anyio
async def test_sender_drain_and_prune__prunes_in_the_same_round(
    senders: Senders, sqlite_db: Database, remote: RemoteServer
) -> None:
    send, clock = senders(sqlite_db.store), senders.clock
    # Given a delivery finished long ago, and a new one due now
    old = queue(sqlite_db, remote.inbox("old"), 1, now=clock() - timedelta(days=40))
    sqlite_db.store.complete(old, 202, clock() - timedelta(days=40))
    queue(sqlite_db, remote.inbox("new"), 2)
    # When a scheduled round runs
    outcomes = await send.drain_and_prune(budget=10)
    # Then the new one is sent and the old row is gone
    assert [o.verdict for o in outcomes] == ["done"]
    assert sqlite_db.store.get_delivery(old) is None
    assert [d.state for d in sqlite_db.store.list_deliveries()] == ["done"]


@pytest.mark.anyio
async def test_sender_drain__a_matrix_message_cut_off_by_the_budget_is_due_again_at_once(
    senders: Senders, sqlite_db: Database
) -> None:
    with silent_server() as homeserver:
        # Given a room message queued for a homeserver that never answers
        job = Job("announce", homeserver, "!room:example.org", "txn1", "txn1", f"{BLOG}/ap/p/1")
        where = f"{homeserver}/!room:example.org"
        sqlite_db.store.enqueue(
            "announce-1", [where], job.to_json(), senders.clock(), channel=CHANNEL
        )
        channel = MatrixChannel(sqlite_db.store, "token", "fedipress-test", allow_private=True)
        send = senders(sqlite_db.store, channels={CHANNEL: channel})
        try:
            # When a scheduled drain's budget runs out while the request waits
            (outcome,) = await send.drain(budget=0.3)
        finally:
            await channel.aclose()
    # Then it is cut off, as a POST would be: due again at once, the host not blamed
    assert (outcome.status, outcome.verdict, outcome.error) == (None, "retry", INTERRUPTED)
    (row,) = sqlite_db.store.list_deliveries()
    assert (row.state, row.lease_owner) == ("pending", None)
    assert row.next_attempt_at <= senders.clock()
