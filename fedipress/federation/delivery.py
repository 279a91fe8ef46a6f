"""Outbound delivery: the retry policy (pure) and the sender that drains the store's queue.

At least once, never lost: a worker claims rows with a lease, signs and POSTs each one, and
records the outcome; a worker that dies leaves leases that expire, and the rows are sent
again. Receivers de-duplicate by the activity id, which never changes between attempts.
Response handling mirrors Mastodon's (FEDERATION.md §6.1): 2xx done; 410 from a follower's inbox
removes the follower; other 4xx but 401/408/429 are permanent; the rest is retried with
exponential backoff and jitter for about three days, honouring Retry-After.

Each outcome is committed before its request's slot (the per-host limit) is given back, in
small group commits, so a crash re-sends at most the requests in flight: per process, at
most `per_host` per host and `batch` in all. The sender loop also prunes old rows (seen
activity ids, finished deliveries) on a schedule: see Retention.

Rows of other channels (a Matrix room: federation/matrix.py) go through the same queue and
the same loop; a Channel sends each of them and says what its answers mean.

A drain may have a time budget (a serverless invocation that must return): no request
starts after it, rows claimed but not sent are handed back untouched, and a request still
in flight is cut off and due again at once, without counting against its host. The next
drain picks up where this one stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol
from urllib.parse import urlsplit

import anyio
import httpx

from fedipress.documents.media import AP_MEDIA_TYPE
from fedipress.federation.fetch import user_agent_for
from fedipress.federation.keys import SigningKey
from fedipress.federation.signatures import sign_request
from fedipress.federation.ssrf import GuardedTransport, check_destination
from fedipress.federation.store.base import ACTIVITYPUB, Delivery, Store

HOST_UNAVAILABLE = "host unavailable"
# A request cut off when its drain's time budget ran out: it may have arrived, so it is sent
# again (receivers drop a repeated activity id), and it says nothing about the host.
INTERRUPTED = "interrupted: the drain's time budget ran out"
Verdict = Literal["done", "retry", "dead", "gone"]
MAX_ANSWER_BYTES = 4096  # of an answer's body read at most: only for the log and `deliveries`
MAX_ERROR_CHARS = 500  # of it kept as the delivery's last error
log = logging.getLogger("fedipress.delivery")


def host_of(url: str) -> str:
    """The host (and port, unless the scheme's default) a URL is served from: two servers on
    one address but different ports are two hosts for availability and limits."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return host if port is None or port == default else f"{host}:{port}"


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again. Attempt n (1-based) waits base * factor**(n-1), capped, with up to
    `jitter` of it added at random; about three days in all before giving up, like
    Mastodon's sixteen Sidekiq retries (FEDERATION.md §6.2)."""

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.5
    cap: timedelta = timedelta(hours=12)
    jitter: float = 0.25
    give_up_after: timedelta = timedelta(days=3)
    max_retry_after: timedelta = timedelta(days=1)

    def verdict(self, status: int | None) -> Verdict:
        """What a response status (None: no response at all) means for the delivery."""
        if status is not None and 200 <= status < 300:
            return "done"
        if status == 410:
            return "gone"
        if status is not None and 400 <= status < 500 and status not in (401, 408, 429):
            return "dead"
        if status == 501:
            return "dead"
        return "retry"

    def next_attempt(
        self,
        attempts: int,
        first_queued: datetime,
        now: datetime,
        retry_after: timedelta | None = None,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """The time of the next try after `attempts` failed ones, or None to give up."""
        if now - first_queued >= self.give_up_after:
            return None
        delay = min(self.base * self.factor ** max(attempts - 1, 0), self.cap)
        delay += delay * self.jitter * (rng or random).random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        when = now + delay
        return when if when - first_queued <= self.give_up_after + self.cap else None


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


@dataclass(frozen=True)
class Retention:
    """How long finished rows are kept, and how often the sender loop deletes older ones.

    Seen activity ids only have to outlive a signature's validity (at most 12 hours plus
    1 hour of clock skew): a replay after that fails the signature check. Finished
    deliveries keep `enqueue` from queueing the same activity id to the same inbox twice; the
    published record already stops a repeated publish, so they are a second guard, kept a
    month too. Dead (given-up) deliveries stay three months for `deliveries --retry-dead`,
    then go: Follows that cannot be answered must not pile up for ever. Pending ones stay.
    """

    seen: timedelta = timedelta(days=30)
    deliveries: timedelta = timedelta(days=30)
    dead: timedelta = timedelta(days=90)
    interval: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Outcome:
    delivery_id: str
    inbox: str
    status: int | None
    verdict: Verdict
    error: str = ""
    remote_id: str | None = None  # what the receiving side calls it (a Matrix event id)
    waiting: bool = False  # not sent yet: it waits for another delivery, the host is fine


Result = tuple[Delivery, Outcome, timedelta | None]  # an outcome and its Retry-After


@dataclass(frozen=True)
class Attempt:
    """What one try of a channel's delivery gave: the status (None: no answer), an error for
    the log and the row, a Retry-After, the receiving side's id for what was sent, and
    `waiting` when nothing was sent because the row waits for another one (an edit for its
    announcement): retried later without counting against the host."""

    status: int | None
    error: str = ""
    retry_after: timedelta | None = None
    remote_id: str | None = None
    waiting: bool = False


class Channel(Protocol):
    """A way to deliver other than a signed ActivityPub POST (a Matrix room): its rows share
    the queue, the leases, the per-host limits and the retries; the channel sends one row
    and says what its statuses mean."""

    async def send(self, delivery: Delivery) -> Attempt:
        """One try; never raises for a network failure (that is an Attempt without status)."""
        ...

    def verdict(self, status: int | None) -> Verdict: ...

    def settle(self, store: Store, delivery: Delivery, outcome: Outcome, now: datetime) -> None:
        """Runs in the transaction that records `outcome`: what the channel remembers of it."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class Sender:
    """Sends due deliveries from the store's queue, each signed by the account that sends it.

    `signer` is the main account's key; `keys` holds every other key a delivery may name, by
    key id and by fingerprint (a rotation pins the old key by its fingerprint). `store` calls
    are synchronous and short; the network part is async, with a limit of concurrent
    requests per host so one slow server cannot hold up the rest.
    """

    store: Store
    signer: SigningKey
    site_url: str
    allow_private: bool = False
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    client: httpx.AsyncClient | None = None
    per_host: int = 4
    batch: int = 200
    lease_seconds: int = 120
    timeout: httpx.Timeout = field(
        default_factory=lambda: httpx.Timeout(30.0, connect=5.0, read=10.0)
    )
    deadline: float = 30.0  # seconds for a whole request, however slowly its bytes trickle
    retention: Retention = field(default_factory=Retention)
    on_gone: Callable[[str], None] | None = None  # called with an inbox that answered 410
    # A host failing on this many distinct days is skipped but for a probe now and then, and
    # is back as soon as one delivery succeeds (Mastodon's UnavailableDomain, FEDERATION.md §6.2).
    unavailable_after_days: int = 7
    probe_interval: timedelta = timedelta(hours=6)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    keys: Mapping[str, SigningKey] = field(default_factory=dict)
    # Called, after the outcome is committed, with the fingerprint of a pinned key once no
    # pending delivery needs it any more (a rotation's old key can go).
    on_key_done: Callable[[str], None] | None = None
    # Other channels by name (Delivery.channel); the sender claims only the rows it can send.
    # Their rows are not signed: `signer` and `keys` are for ActivityPub rows only.
    channels: Mapping[str, Channel] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic  # seconds, for drain budgets

    max_clients: int = 2048  # per-host connection pools kept open at once

    def __post_init__(self) -> None:
        # One small connection pool per host: httpcore's single pool scans every connection
        # on each request, which slows to a crawl across a thousand hosts. An injected
        # client (tests use httpx's transport seam) serves every host instead.
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._ssl = httpx.create_ssl_context(trust_env=False) if self.client is None else None
        self._host_limits: dict[str, asyncio.Semaphore] = {}
        self._probed: dict[str, datetime] = {}
        self._unrecorded: list[tuple[Result, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._pruned_at: datetime | None = None
        self.user_agent = user_agent_for(self.site_url)

    async def aclose(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()
        for channel in self.channels.values():
            await channel.aclose()

    def _client_for(self, url: str) -> httpx.AsyncClient:
        if self.client is not None:
            return self.client
        host = host_of(url)
        client = self._clients.get(host)
        if client is not None:
            self._clients.move_to_end(host)
            return client
        limits = httpx.Limits(
            max_connections=self.per_host, max_keepalive_connections=self.per_host
        )
        client = httpx.AsyncClient(
            transport=GuardedTransport(self.allow_private, limits, self._ssl),
            follow_redirects=False,
            trust_env=False,
        )
        self._clients[host] = client
        while len(self._clients) > self.max_clients:
            _, oldest = self._clients.popitem(last=False)
            asyncio.get_running_loop().create_task(oldest.aclose())
        return client

    async def drain(
        self, progress: Callable[[int], None] | None = None, budget: float | None = None
    ) -> list[Outcome]:
        """Send every delivery that is due now (several batches if needed); `progress` is
        told how many were sent so far after each batch.

        With a `budget` (seconds), the drain ends within it: no request starts once it has
        passed, claimed rows not sent by then are released as they were, and a request in
        flight is cut off (INTERRUPTED) and due again at once. Nothing is lost; the next
        drain continues with what is left, oldest first."""
        stop_at = None if budget is None else self.monotonic() + budget
        outcomes: list[Outcome] = []
        while stop_at is None or self.monotonic() < stop_at:
            claimed = await asyncio.to_thread(
                self.store.claim_due,
                self.now(),
                self.batch,
                self.lease_seconds,
                self.owner,
                (ACTIVITYPUB, *self.channels),
            )
            if not claimed:
                break
            unavailable = await asyncio.to_thread(self._unavailable, claimed)
            results = await asyncio.gather(
                *(
                    self._skip(d) if d.id in unavailable else self._deliver(d, stop_at)
                    for d in claimed
                )
            )
            outcomes += [outcome for outcome in results if outcome is not None]
            unsent = [d.id for d, outcome in zip(claimed, results, strict=True) if outcome is None]
            if unsent:
                await asyncio.to_thread(self.store.release, unsent, self.owner)
            if progress is not None:
                progress(len(outcomes))
        return outcomes

    async def run(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        """Drain now, then whenever woken (a new row was queued) or every `idle` seconds;
        prune old rows every `retention.interval`."""
        while not stop.is_set():
            # Cleared before draining: a row queued while the drain runs wakes the next one.
            self.wake.clear()
            await self.prune_if_due()
            await self.drain()
            waiters = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waiters, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
            for task in waiters:
                task.cancel()

    async def drain_and_prune(self, budget: float | None = None) -> list[Outcome]:
        """A serverless invocation's sending round: prune first if due (a drain may use up
        the time budget), then send what is due within `budget` seconds."""
        await self.prune_if_due()
        return await self.drain(budget=budget)

    async def prune_if_due(self) -> int:
        """Delete rows older than the retention, at most once per `retention.interval`;
        returns how many. A failure is logged, never raised: sending matters more."""
        now = self.now()
        if self._pruned_at is not None and now - self._pruned_at < self.retention.interval:
            return 0
        self._pruned_at = now
        try:
            seen, deliveries = await asyncio.to_thread(self._prune, now)
        except Exception as exc:  # any store failure: try again next interval
            log.warning("pruning old rows failed: %s", exc)
            return 0
        if seen or deliveries:
            log.info("pruned %d seen activity ids and %d finished deliveries", seen, deliveries)
        return seen + deliveries

    def _prune(self, now: datetime) -> tuple[int, int]:
        return (
            self.store.prune_seen(now - self.retention.seen),
            self.store.prune_deliveries(
                now - self.retention.deliveries, dead_older_than=now - self.retention.dead
            ),
        )

    def _limit(self, url: str) -> asyncio.Semaphore:
        host = host_of(url)
        if host not in self._host_limits:
            self._host_limits[host] = asyncio.Semaphore(self.per_host)
        return self._host_limits[host]

    def _unavailable(self, claimed: Sequence[Delivery]) -> set[str]:
        """Ids of deliveries to hold back: their host is unavailable and was probed lately
        (the first delivery to such a host in each probe interval goes out as the probe)."""
        now = self.now()
        held: set[str] = set()
        down = {
            host
            for host in {host_of(d.inbox_url) for d in claimed}
            if self.store.is_host_unavailable(host)
        }
        for delivery in claimed:
            host = host_of(delivery.inbox_url)
            if host not in down:
                continue
            last = self._probed.get(host)
            if last is None or now - last >= self.probe_interval:
                self._probed[host] = now
            else:
                held.add(delivery.id)
        return held

    async def _skip(self, delivery: Delivery) -> Outcome:
        outcome = Outcome(delivery.id, delivery.inbox_url, None, "retry", HOST_UNAVAILABLE)
        await self._commit((delivery, outcome, self.probe_interval))
        return outcome

    async def _deliver(self, delivery: Delivery, stop_at: float | None = None) -> Outcome | None:
        """Send one delivery and record its outcome; None when the budget ending at
        `stop_at` ran out before its turn came (it was not sent: the caller releases it)."""
        # The slot is held until the outcome is committed: what a crash can re-send is
        # bounded by the slots, not by how far the commits lag behind the network.
        async with self._limit(delivery.inbox_url):
            if stop_at is not None and self.monotonic() >= stop_at:
                return None
            channel = self.channels.get(delivery.channel)
            if channel is None:
                status, error, retry_after = await self._post(delivery, stop_at)
                verdict = self.policy.verdict(status)
                outcome = Outcome(delivery.id, delivery.inbox_url, status, verdict, error)
            else:
                outcome, retry_after = await self._send_on(channel, delivery, stop_at)
            await self._commit((delivery, outcome, retry_after))
        return outcome

    async def _send_on(
        self, channel: Channel, delivery: Delivery, stop_at: float | None
    ) -> tuple[Outcome, timedelta | None]:
        """One try on another channel, cut off like a POST when the drain's budget ends (the
        channel's own idempotency, such as a Matrix transaction id, makes the retry safe)."""
        limit = None if stop_at is None else max(stop_at - self.monotonic(), 0.0)
        with anyio.move_on_after(limit) as scope:
            attempt = await channel.send(delivery)
        if scope.cancelled_caught:
            interrupted = Outcome(delivery.id, delivery.inbox_url, None, "retry", INTERRUPTED)
            return interrupted, None
        outcome = Outcome(
            delivery.id,
            delivery.inbox_url,
            attempt.status,
            "retry" if attempt.waiting else channel.verdict(attempt.status),
            attempt.error[:MAX_ERROR_CHARS],
            attempt.remote_id,
            attempt.waiting,
        )
        return outcome, attempt.retry_after

    async def _commit(self, result: Result) -> None:
        """Record one outcome, in a group commit with those that finished meanwhile: one
        transaction writes every waiting outcome, and the next starts as soon as it ends."""
        done = asyncio.get_running_loop().create_future()
        self._unrecorded.append((result, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_waiting())
        await done

    async def _record_waiting(self) -> None:
        while self._unrecorded:
            group, self._unrecorded = self._unrecorded, []
            try:
                await asyncio.to_thread(self._record_all, [result for result, _ in group])
            except Exception as exc:
                _settle((done for _, done in group), exc)
            else:
                _settle((done for _, done in group), None)

    def _record_all(self, results: Sequence[Result]) -> None:
        with self.store.transaction():
            for delivery, outcome, retry_after in results:
                self._record(delivery, outcome, retry_after)
            pinned = {d.signing_key for d, _, _ in results if d.signing_key}
            done = [key for key in pinned if not self.store.count_pending_signed_with(key)]
        if self.on_key_done is not None:
            for key in done:
                self.on_key_done(key)

    def signer_for(self, delivery: Delivery) -> SigningKey | None:
        """The key a delivery is signed with: the pinned one (by fingerprint) if this process
        has it, else the current key of its key id; None when this process has neither (the
        delivery waits: a wrong key id would be refused as another actor's). A pinned key
        that is gone falls back to the current one: receivers then refetch the actor."""
        key_id = delivery.signed_by or self.signer.key_id
        if delivery.signing_key:
            pinned = self.keys.get(delivery.signing_key)
            if pinned is not None:
                return SigningKey(key_id, pinned.private_key)
            log.warning(
                "the key %s pinned for %s is gone; signing with the current key",
                delivery.signing_key,
                delivery.activity_id,
            )
        if key_id == self.signer.key_id:
            return self.signer
        return self.keys.get(key_id)

    async def _post(
        self, delivery: Delivery, stop_at: float | None = None
    ) -> tuple[int | None, str, timedelta | None]:
        """POST one delivery: (status, error, Retry-After). The whole request, the answer's
        body included, gets `deadline` seconds, or what is left of the drain's budget (then
        a request cut off answers INTERRUPTED). Once a status has arrived it decides: a body
        that is endless, slow or shorter than it said does not make an accepted POST a retry.
        """
        started = anyio.current_time()
        limit, budgeted = self.deadline, False
        if stop_at is not None and stop_at - self.monotonic() < self.deadline:
            limit, budgeted = max(stop_at - self.monotonic(), 0.0), True
        try:
            with anyio.fail_after(limit):
                refusal = await check_destination(delivery.inbox_url, self.allow_private)
                if refusal is not None:
                    return 403, f"refused: {refusal}", None  # never retried: a private address
                signer = self.signer_for(delivery)
                if signer is None:
                    return None, f"no private key for {delivery.signed_by} here", None
                response = await self._send(delivery, signer)
        except TimeoutError:
            if budgeted:
                return None, INTERRUPTED, None
            return None, f"no answer within {self.deadline} s", None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS], None
        answer = bytearray()
        try:
            with anyio.CancelScope(deadline=started + limit):
                await _read_answer(response, answer)
        finally:
            await response.aclose()
        retry_after = parse_retry_after(response.headers.get("retry-after"), self.now())
        error = "" if response.is_success else answer.decode("utf-8", "replace")
        return response.status_code, error[:MAX_ERROR_CHARS], retry_after

    async def _send(self, delivery: Delivery, signer: SigningKey) -> httpx.Response:
        """Sign and send the POST; the answer's body is left unread (streamed)."""
        body = delivery.body.encode()
        headers = sign_request(
            "POST",
            delivery.inbox_url,
            {
                "Content-Type": AP_MEDIA_TYPE,
                "User-Agent": self.user_agent,
                "Accept": "application/activity+json, application/ld+json",
                # The answer is read raw (see _read_answer): ask for it uncompressed.
                "Accept-Encoding": "identity",
            },
            body,
            signer.key_id,
            signer.private_key,
            self.now(),
        )
        client = self._client_for(delivery.inbox_url)
        request = client.build_request(
            "POST", delivery.inbox_url, content=body, headers=headers, timeout=self.timeout
        )
        return await client.send(request, stream=True, follow_redirects=False)

    def _record(self, delivery: Delivery, outcome: Outcome, retry_after: timedelta | None) -> None:
        """Store one outcome; runs inside _record_all's transaction."""
        now = self.now()
        host = host_of(delivery.inbox_url)
        if (channel := self.channels.get(delivery.channel)) is not None:
            channel.settle(self.store, delivery, outcome, now)
        if outcome.verdict == "done":
            self.store.complete(delivery.id, outcome.status, now)
            self.store.record_host_success(host, now)
            log.info(
                "delivered %s to %s: %s", delivery.activity_id, delivery.inbox_url, outcome.status
            )
            return
        if outcome.verdict in ("dead", "gone"):
            self.store.give_up(delivery.id, outcome.status, outcome.error, now)
            if outcome.verdict == "gone" and self.on_gone is not None:
                self.on_gone(delivery.inbox_url)
            log.warning(
                "gave up %s to %s: %s %s",
                delivery.activity_id,
                delivery.inbox_url,
                outcome.status,
                outcome.error[:200],
            )
            return
        if outcome.error == INTERRUPTED:
            # Cut off by the budget, not refused: due again at once, no backoff, no failure.
            self.store.retry_later(delivery.id, now, outcome.status, outcome.error, now)
            return
        if outcome.error != HOST_UNAVAILABLE and not outcome.waiting:
            days = self.store.record_host_failure(host, now)
            if days >= self.unavailable_after_days:
                self.store.set_host_unavailable(host, True)
        when = self.policy.next_attempt(delivery.attempts, delivery.created_at, now, retry_after)
        if when is None:
            self.store.give_up(delivery.id, outcome.status, outcome.error or "gave up", now)
            log.warning(
                "gave up %s to %s after %d attempts: %s",
                delivery.activity_id,
                delivery.inbox_url,
                delivery.attempts + 1,
                outcome.error[:200] or outcome.status,
            )
        else:
            self.store.retry_later(delivery.id, when, outcome.status, outcome.error, now)
            # A host marked unavailable is skipped quietly until its next probe.
            quiet = outcome.error == HOST_UNAVAILABLE or outcome.waiting
            level = logging.DEBUG if quiet else logging.INFO
            log.log(
                level,
                "will retry %s to %s at %s: %s",
                delivery.activity_id,
                delivery.inbox_url,
                f"{when:%Y-%m-%d %H:%M:%S}",
                outcome.error[:200] or outcome.status,
            )


async def _read_answer(response: httpx.Response, into: bytearray) -> None:
    """Read the start of an answer's body into `into`: at most MAX_ANSWER_BYTES, raw (no
    decompression to inflate them), however long the body is or says it is. A short body is
    read to its end, so that the connection can serve the next delivery; a broken one keeps
    what arrived."""
    try:
        async for chunk in response.aiter_raw():
            into += chunk[: MAX_ANSWER_BYTES - len(into)]
            if len(into) >= MAX_ANSWER_BYTES:
                return  # aclose() then drops the connection and the rest of the body with it
    except httpx.HTTPError:
        return


def _settle(waiters: Iterable[asyncio.Future[None]], error: Exception | None) -> None:
    for done in waiters:
        if done.done():
            continue  # its sender was cancelled (a drain's time budget ran out)
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
