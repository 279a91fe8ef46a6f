"""Remote keys: the key a signature names, fetched through the Fetcher, cached in memory and
in the store, and trusted only when the actor that owns it lists it (FEDERATION.md §4.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urldefrag

import anyio
import anyio.to_thread

from fedipress.documents.media import JSONObject
from fedipress.federation.fetch import Fetcher, FetchResult, may_work_later
from fedipress.federation.origins import normalize_url, origin_of
from fedipress.federation.signature_checks import key_id_problem
from fedipress.federation.signatures import KeyGone, KeyLookup, KeyProblem, RemoteKey

# Actor documents kept after a key fetch, for the profile of the activity that needed the key.
RECENT_DOCUMENTS = 256
RECENT_DOCUMENT_AGE = timedelta(minutes=1)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StoredKey(Protocol):
    """A key as a persistent cache returns it (the store's CachedKey is one)."""

    @property
    def key_id(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def public_key_pem(self) -> str: ...
    @property
    def fetched_at(self) -> datetime: ...


class KeyCache(Protocol):
    """A persistent key cache (the store implements it) so that keys outlive the process:
    a follower's Delete(actor) can then be verified after its actor is gone (FEDERATION.md §4.4)."""

    def get_key(self, key_id: str) -> StoredKey | None: ...
    def put_key(self, key: RemoteKey, now: datetime) -> None: ...
    def delete_key(self, key_id: str) -> object: ...


class CachedKeyFetcher:
    """A KeyFetcher over a Fetcher, with an in-memory cache and an optional persistent one.

    Fetches the key id without its fragment and takes the `publicKey` whose id equals the key
    id (publicKey may be a list; GoToSocial's `…/main-key` URL serves a stub whose publicKey
    names the real actor as `owner`); the owner must share the key id's origin, and when the
    key was not served by the owner's own document, the owner's actor document must list it
    too: another document on that host cannot vouch for someone else's key. 404 and 410 give
    KeyGone; other failures give a KeyProblem, to retry (503) only when a later try may work.

    Keys are kept for `ttl`; a refresh within `min_refresh_interval` of the last fetch
    returns the cached key, so forged signatures cannot make us refetch in a loop. At most
    `max_entries` keys stay in memory (oldest fetched dropped first). Finding one key takes
    at most `timeout` seconds, waiting for the Fetcher's per-host slots included, and
    concurrent lookups of the same key id share one fetch.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        cache: KeyCache | None = None,
        ttl: timedelta = timedelta(days=1),
        min_refresh_interval: timedelta = timedelta(minutes=1),
        max_entries: int = 10_000,
        timeout: float = 5.0,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._fetcher = fetcher
        self._max_entries = max_entries
        self._cache = cache
        self._ttl = ttl
        self._min_refresh_interval = min_refresh_interval
        self._timeout = timeout
        self._now = now
        self._memory: dict[str, tuple[RemoteKey, datetime]] = {}
        self._pending: dict[str, _PendingKey] = {}
        self._documents: dict[str, tuple[JSONObject, datetime]] = {}

    async def __call__(self, key_id: str, refresh: bool = False) -> KeyLookup:
        malformed = key_id_problem(key_id)
        if malformed:
            return KeyProblem(malformed)
        now = self._now()
        cached = await self._cached(key_id)
        if cached is not None:
            key, fetched_at = cached
            if now - fetched_at < (self._min_refresh_interval if refresh else self._ttl):
                return key
        found = await self._shared_fetch(key_id, now)
        if isinstance(found, KeyProblem) and found.retry and cached is not None and not refresh:
            return cached[0]  # a stale key beats a 503; but a refresh was asked as it failed
        return found

    async def _shared_fetch(self, key_id: str, now: datetime) -> RemoteKey | KeyGone | KeyProblem:
        """One fetch per key id at a time: later callers wait for the first one's answer."""
        pending = self._pending.get(key_id)
        if pending is not None:
            await pending.done.wait()
            return pending.result or KeyProblem("the key fetch was interrupted", retry=True)
        pending = self._pending[key_id] = _PendingKey()
        try:
            with anyio.move_on_after(self._timeout):
                pending.result = await self._fetch(key_id, now)
        finally:
            del self._pending[key_id]
            pending.done.set()
        return pending.result or KeyProblem(f"no key within {self._timeout} s", retry=True)

    async def _fetch(self, key_id: str, now: datetime) -> RemoteKey | KeyGone | KeyProblem:
        result = await self._fetcher.fetch_json(urldefrag(key_id).url)
        if result.document is None:
            return await self._failed(key_id, result)
        key = key_from_document(result.document, key_id)
        if key is None:
            await self._drop(key_id)  # the actor no longer publishes this key: revoked
            return KeyProblem(f"{result.final_url} does not hold {key_id} for an owner there")
        if normalize_url(result.final_url) != normalize_url(key.owner):
            owner = await self._fetcher.fetch_json(key.owner)
            if owner.document is None:
                return await self._failed(key_id, owner)
            listed = key_from_document(owner.document, key_id)
            if owner.document.get("id") != key.owner or listed is None or listed.owner != key.owner:
                await self._drop(key_id)
                return KeyProblem(f"the actor {key.owner} does not list the key {key_id}")
            key = listed  # the actor's own document is the authority on its key
            self._keep_document(owner.document, now)
        else:
            self._keep_document(result.document, now)
        self._remember(key, now)
        if self._cache is not None:
            await anyio.to_thread.run_sync(self._cache.put_key, key, now)
        return key

    async def _failed(self, key_id: str, result: FetchResult) -> KeyGone | KeyProblem:
        if result.failure in ("not_found", "gone"):
            await self._drop(key_id)
            return KeyGone(result.status, result.final_url or result.url)
        reason = f"{result.final_url or result.url}: {result.failure} ({result.reason})"
        return KeyProblem(reason, retry=may_work_later(result))

    async def _cached(self, key_id: str) -> tuple[RemoteKey, datetime] | None:
        if key_id in self._memory:
            return self._memory[key_id]
        if self._cache is None:
            return None
        # The persistent cache is the store: its calls block, so they run in a thread.
        stored = await anyio.to_thread.run_sync(self._cache.get_key, key_id)
        if stored is None:
            return None
        key = RemoteKey(stored.key_id, stored.owner, stored.public_key_pem)
        self._remember(key, stored.fetched_at)
        return key, stored.fetched_at

    def _remember(self, key: RemoteKey, fetched_at: datetime) -> None:
        self._memory.pop(key.key_id, None)  # re-inserted last: dict order is fetch order
        self._memory[key.key_id] = (key, fetched_at)
        while len(self._memory) > self._max_entries:
            del self._memory[next(iter(self._memory))]

    def _keep_document(self, document: JSONObject, now: datetime) -> None:
        actor_id = document.get("id")
        if isinstance(actor_id, str):
            self._documents.pop(actor_id, None)
            self._documents[actor_id] = (document, now)
            while len(self._documents) > RECENT_DOCUMENTS:
                del self._documents[next(iter(self._documents))]

    def recent_document(self, actor_id: str) -> JSONObject | None:
        """The actor document fetched with its key in the last RECENT_DOCUMENT_AGE, if any:
        what the inbox reads the sender's profile from without a second GET."""
        kept = self._documents.get(actor_id)
        if kept is None or self._now() - kept[1] > RECENT_DOCUMENT_AGE:
            return None
        return kept[0]

    def forget(self, key_id: str) -> None:
        """Drop a key from both caches, e.g. after its actor sent an Update (key rotation).
        Blocking: the inbox calls it inside its store transaction, in a worker thread."""
        self._memory.pop(key_id, None)
        if self._cache is not None:
            self._cache.delete_key(key_id)

    async def _drop(self, key_id: str) -> None:
        """`forget`, from the event loop."""
        await anyio.to_thread.run_sync(self.forget, key_id)


@dataclass
class _PendingKey:
    done: anyio.Event = field(default_factory=anyio.Event)
    result: RemoteKey | KeyGone | KeyProblem | None = None


def key_from_document(document: JSONObject, key_id: str) -> RemoteKey | None:
    """The key `key_id` from an actor, a GoToSocial main-key stub or a bare key document.

    None when the document does not hold that key, or when its owner is on another origin
    (a document may only vouch for keys of its own server). Pure.
    """
    candidates: list[object] = [document]
    public_key = document.get("publicKey")
    candidates += public_key if isinstance(public_key, list) else [public_key]
    for candidate in candidates:
        if not isinstance(candidate, dict) or candidate.get("id") != key_id:
            continue
        owner, pem = candidate.get("owner"), candidate.get("publicKeyPem")
        if not isinstance(owner, str) or not isinstance(pem, str):
            continue
        if origin_of(owner) != origin_of(key_id) or normalize_url(owner) is None:
            return None
        return RemoteKey(key_id, owner, pem)
    return None
