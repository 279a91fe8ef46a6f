"""Outbound delivery: the retry policy (pure) and the sender that drains the store's queue.

At least once, never lost: a worker claims rows with a lease, signs and POSTs each one, and
records the outcome; a worker that dies leaves leases that expire, and the rows are sent
again. Receivers de-duplicate by the activity id, which never changes between attempts.
Response handling mirrors Mastodon's (spec §6.1): 2xx done; 410 from a follower's inbox
removes the follower; other 4xx but 401/408/429 are permanent; the rest is retried with
exponential backoff and jitter for about three days, honouring Retry-After.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit

import httpx

from fedipress.federation.fetch import user_agent_for
from fedipress.federation.keys import SigningKey
from fedipress.federation.signatures import sign_request
from fedipress.federation.ssrf import GuardedTransport, check_destination
from fedipress.federation.store.base import Delivery, Store

AP_CONTENT_TYPE = "application/activity+json"
HOST_UNAVAILABLE = "host unavailable"
Verdict = Literal["done", "retry", "dead", "gone"]


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again. Attempt n (1-based) waits base * factor**(n-1), capped, with up to
    `jitter` of it added at random; about three days in all before giving up, like
    Mastodon's sixteen Sidekiq retries (spec §6.2)."""

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
class Outcome:
    delivery_id: str
    inbox: str
    status: int | None
    verdict: Verdict
    error: str = ""


@dataclass
class Sender:
    """Sends due deliveries from the store's queue, signed with the blog's key.

    `store` calls are synchronous and short; the network part is async, with a limit of
    concurrent requests per host so one slow server cannot hold up the rest.
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
    on_gone: Callable[[str], None] | None = None  # called with an inbox that answered 410
    # A host failing on this many distinct days is skipped but for a probe now and then, and
    # is back as soon as one delivery succeeds (Mastodon's UnavailableDomain, spec §6.2).
    unavailable_after_days: int = 7
    probe_interval: timedelta = timedelta(hours=6)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    max_clients: int = 2048  # per-host connection pools kept open at once

    def __post_init__(self) -> None:
        # One small connection pool per host: httpcore's single pool scans every connection
        # on each request, which slows to a crawl across a thousand hosts. An injected
        # client (tests use httpx's transport seam) serves every host instead.
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._ssl = httpx.create_ssl_context(trust_env=False) if self.client is None else None
        self._host_limits: dict[str, asyncio.Semaphore] = {}
        self._probed: dict[str, datetime] = {}
        self.user_agent = user_agent_for(self.site_url)

    async def aclose(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()

    def _client_for(self, url: str) -> httpx.AsyncClient:
        if self.client is not None:
            return self.client
        host = urlsplit(url).netloc
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

    async def drain(self, progress: Callable[[int], None] | None = None) -> list[Outcome]:
        """Send every delivery that is due now (several batches if needed); `progress` is
        told how many were sent so far after each batch."""
        outcomes: list[Outcome] = []
        while True:
            claimed = await asyncio.to_thread(
                self.store.claim_due, self.now(), self.batch, self.lease_seconds, self.owner
            )
            if not claimed:
                return outcomes
            unavailable = await asyncio.to_thread(self._unavailable, claimed)
            results = await asyncio.gather(
                *(self._skip(d) if d.id in unavailable else self._deliver(d) for d in claimed)
            )
            # One transaction per batch: thousands of deliveries, not thousands of commits.
            await asyncio.to_thread(self._record_all, results)
            outcomes += [outcome for _, outcome, _ in results]
            if progress is not None:
                progress(len(outcomes))

    async def run(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        """Drain now, then whenever woken (a new row was queued) or every `idle` seconds."""
        while not stop.is_set():
            # Cleared before draining: a row queued while the drain runs wakes the next one.
            self.wake.clear()
            await self.drain()
            waiters = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waiters, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
            for task in waiters:
                task.cancel()

    def _limit(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc
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
            for host in {urlsplit(d.inbox_url).netloc for d in claimed}
            if self.store.is_host_unavailable(host)
        }
        for delivery in claimed:
            host = urlsplit(delivery.inbox_url).netloc
            if host not in down:
                continue
            last = self._probed.get(host)
            if last is None or now - last >= self.probe_interval:
                self._probed[host] = now
            else:
                held.add(delivery.id)
        return held

    async def _skip(self, delivery: Delivery) -> tuple[Delivery, Outcome, timedelta | None]:
        outcome = Outcome(delivery.id, delivery.inbox_url, None, "retry", HOST_UNAVAILABLE)
        return delivery, outcome, self.probe_interval

    async def _deliver(self, delivery: Delivery) -> tuple[Delivery, Outcome, timedelta | None]:
        async with self._limit(delivery.inbox_url):
            status, error, retry_after = await self._post(delivery)
        verdict = self.policy.verdict(status)
        return (
            delivery,
            Outcome(delivery.id, delivery.inbox_url, status, verdict, error),
            retry_after,
        )

    def _record_all(self, results: Sequence[tuple[Delivery, Outcome, timedelta | None]]) -> None:
        with self.store.transaction():
            for delivery, outcome, retry_after in results:
                self._record(delivery, outcome, retry_after)

    async def _post(self, delivery: Delivery) -> tuple[int | None, str, timedelta | None]:
        refusal = await check_destination(delivery.inbox_url, self.allow_private)
        if refusal is not None:
            return 403, f"refused: {refusal}", None  # never retried: a private address
        body = delivery.body.encode()
        headers = sign_request(
            "POST",
            delivery.inbox_url,
            {
                "Content-Type": AP_CONTENT_TYPE,
                "User-Agent": self.user_agent,
                "Accept": "application/activity+json, application/ld+json",
            },
            body,
            self.signer.key_id,
            self.signer.private_key,
            self.now(),
        )
        try:
            response = await self._client_for(delivery.inbox_url).post(
                delivery.inbox_url,
                content=body,
                headers=headers,
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], None
        retry_after = parse_retry_after(response.headers.get("retry-after"), self.now())
        error = "" if response.is_success else response.text[:500]
        return response.status_code, error, retry_after

    def _record(self, delivery: Delivery, outcome: Outcome, retry_after: timedelta | None) -> None:
        """Store one outcome; runs inside _record_all's transaction."""
        now = self.now()
        host = urlsplit(delivery.inbox_url).netloc
        if outcome.verdict == "done":
            self.store.complete(delivery.id, outcome.status, now)
            self.store.record_host_success(host, now)
            return
        if outcome.verdict in ("dead", "gone"):
            self.store.give_up(delivery.id, outcome.status, outcome.error, now)
            if outcome.verdict == "gone" and self.on_gone is not None:
                self.on_gone(delivery.inbox_url)
            return
        if outcome.error != HOST_UNAVAILABLE:
            days = self.store.record_host_failure(host, now)
            if days >= self.unavailable_after_days:
                self.store.set_host_unavailable(host, True)
        when = self.policy.next_attempt(delivery.attempts, delivery.created_at, now, retry_after)
        if when is None:
            self.store.give_up(delivery.id, outcome.status, outcome.error or "gave up", now)
        else:
            self.store.retry_later(delivery.id, when, outcome.status, outcome.error, now)
