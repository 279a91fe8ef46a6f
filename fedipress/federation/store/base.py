"""The Store contract: what the inbox and the delivery queue remember, as plain rows.

No SQL here. Conventions every backend follows:

- Methods live on the store. `with store.transaction() as tx:` yields the same store; every
  call made from that thread until the block ends joins one transaction, committed when the
  block exits and rolled back if it raises. Nested `transaction()` blocks are savepoints.
  Calls made outside a block run in a transaction of their own. Other threads sharing the
  store wait until the block ends, so keep blocks short (no network I/O inside).
- Every time is an aware `datetime` in Python and UTC ISO-8601 text in the database
  (`2024-05-01T12:00:00.000000Z`, fixed width, so text order is time order). Naive
  datetimes raise ValueError. Callers pass `now`: the store reads no clock (except to
  stamp applied migrations).
- Ids are text (activity/actor URLs, or uuid hex for deliveries).
- Lists take `limit` and `offset` and come back in a stable order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

FollowerState = Literal["accepted", "pending"]
BlockKind = Literal["actor", "domain"]
InteractionKind = Literal["like", "announce", "reply"]
# "hidden": the author hid it; approving shows it again.
InteractionState = Literal["approved", "pending", "hidden"]
DeliveryState = Literal["pending", "done", "dead"]
# How a delivery is sent: a signed POST to an ActivityPub inbox, or another channel's request
# (federation/delivery.py, Channel). Every channel shares the queue's leases and retries.
ACTIVITYPUB = "activitypub"
PublishedState = Literal["live", "deleted"]


@dataclass(frozen=True)
class Follower:
    actor_id: str
    inbox: str
    shared_inbox: str | None
    handle: str | None
    follow_activity_id: str | None
    state: FollowerState
    created_at: datetime
    updated_at: datetime
    account: str = ""  # which of the site's accounts they follow: '' the main one


@dataclass(frozen=True)
class MovedFollower:
    """A follower who left an account after its Move: they re-followed `target`."""

    account: str
    actor_id: str
    target: str
    moved_at: datetime


class RemoteKey(Protocol):
    """Anything with these attributes can be cached (signatures.RemoteKey is one)."""

    @property
    def key_id(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def public_key_pem(self) -> str: ...


@dataclass(frozen=True)
class CachedKey:
    """A remote public key as cached; structurally a RemoteKey."""

    key_id: str
    owner: str
    public_key_pem: str
    fetched_at: datetime


@dataclass(frozen=True)
class RemoteActor:
    actor_id: str
    inbox: str
    shared_inbox: str | None
    handle: str | None
    fetched_at: datetime


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    value: str
    created_at: datetime


@dataclass(frozen=True)
class Interaction:
    """A like, boost or reply to one of our posts (`object_id`); `id` is the remote id."""

    id: str
    kind: InteractionKind
    actor_id: str
    object_id: str
    state: InteractionState = "approved"
    content_html: str | None = None  # already sanitized by the caller
    url: str | None = None
    in_reply_to: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    raw_json: str | None = None
    summary: str | None = None  # a reply's content warning, plain text
    public: bool = True  # addressed to the public: only these are ever shown
    depth: int = 0  # 0: replies to the post; n + 1: replies to a reply at depth n


@dataclass(frozen=True)
class ActorProfile:
    """What the blog shows of a remote account: name, handle, profile link and avatar.
    `avatar_data` holds the checked image bytes (None: show initials)."""

    actor_id: str
    name: str | None
    handle: str | None  # 'user@host'
    url: str | None  # the profile page, http(s) only
    fetched_at: datetime
    avatar_url: str | None = None  # where it was fetched from, to notice a new one
    avatar_type: str | None = None
    avatar_data: bytes | None = None

    @property
    def avatar_digest(self) -> str | None:
        """A content hash naming the avatar's file on the blog."""
        if self.avatar_data is None:
            return None
        return hashlib.sha256(self.avatar_data).hexdigest()[:20]


@dataclass(frozen=True)
class InteractionCounts:
    likes: int = 0
    announces: int = 0
    replies: int = 0


@dataclass(frozen=True)
class Flag:
    """A report (Flag activity) about our actor or posts."""

    id: str
    actor_id: str
    content: str | None
    object_ids: tuple[str, ...]
    received_at: datetime
    raw_json: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One POST of one activity to one inbox; `body` is the exact JSON text to send."""

    id: str
    activity_id: str
    inbox_url: str
    body: str
    state: DeliveryState
    attempts: int  # attempts started: claim_due counts one before the POST is made
    next_attempt_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    signed_by: str | None = None  # the key id that signs it; None: the main account's
    signing_key: str | None = None  # a fingerprint pinning one key of that id (a rotation)
    channel: str = ACTIVITYPUB


@dataclass(frozen=True)
class Announcement:
    """A post as announced somewhere other than ActivityPub (a Matrix room): `id` is the
    announcing delivery's activity id, `destination` where it went, and `remote_id` what the
    other side calls it (the Matrix event id) once sent, so edits and removals can target it.
    `removed_at` is set once its removal was queued."""

    id: str
    destination: str
    object_id: str
    remote_id: str | None
    created_at: datetime
    updated_at: datetime
    removed_at: datetime | None = None


@dataclass(frozen=True)
class QueueStats:
    pending: int = 0
    done: int = 0
    dead: int = 0


@dataclass(frozen=True)
class HostStatus:
    host: str
    failure_days: tuple[str, ...]  # distinct UTC days 'YYYY-MM-DD' with a failure, oldest first
    unavailable: bool
    last_success_at: datetime | None
    last_failure_at: datetime | None


@dataclass(frozen=True)
class PublishedObject:
    """What we last published for one post: `version` is its content hash."""

    object_id: str
    uid: str
    version: str
    updated: datetime | None
    state: PublishedState
    first_published_at: datetime
    last_delivered_at: datetime | None = None
    type: str = "Note"  # the object's ActivityStreams type: a Delete's formerType


class Store(Protocol):
    """Federation state behind one database connection. See the module docstring."""

    # -- lifecycle --------------------------------------------------------------------------
    def transaction(self) -> AbstractContextManager[Store]: ...
    def close(self) -> None: ...
    def schema_version(self) -> int:
        """The newest migration applied to the database."""
        ...

    # -- followers --------------------------------------------------------------------------
    # Followers are per account of the site (`Follower.account`, '' the main one). Methods
    # that take `account` default to the main account; None means every account.
    def upsert_follower(self, follower: Follower) -> None:
        """Insert or replace (per account and actor); an existing row keeps its `created_at`."""
        ...

    def get_follower(self, actor_id: str, account: str = "") -> Follower | None: ...
    def get_follower_by_follow_id(self, follow_activity_id: str) -> Follower | None: ...
    def list_followers(
        self,
        state: FollowerState | None = None,
        limit: int = 100,
        offset: int = 0,
        account: str | None = "",
    ) -> list[Follower]:
        """Ordered by account, then actor id."""
        ...

    def count_followers(
        self, state: FollowerState | None = "accepted", account: str | None = ""
    ) -> int: ...
    def remove_follower(self, actor_id: str, account: str | None = "") -> bool: ...
    def remove_followers_with_inbox(self, inbox: str) -> int:
        """Remove the followers whose personal inbox is `inbox` (it answered 410 Gone)."""
        ...

    def set_follower_state(
        self, actor_id: str, state: FollowerState, now: datetime, account: str = ""
    ) -> bool: ...
    def follower_inboxes(self, accounts: Sequence[str] = ("",)) -> list[str]:
        """Where to deliver to the accepted followers of these accounts: shared inbox, else
        inbox; distinct, sorted."""
        ...

    def record_moved_follower(
        self, account: str, actor_id: str, target: str, now: datetime
    ) -> None: ...
    def list_moved_followers(self, account: str | None = "") -> list[MovedFollower]:
        """Ordered by account, then actor id."""
        ...

    # -- remote keys and actors (caches) ----------------------------------------------------
    def get_key(self, key_id: str) -> CachedKey | None: ...
    def put_key(self, key: RemoteKey, now: datetime) -> None: ...
    def delete_key(self, key_id: str) -> bool: ...
    def get_remote_actor(self, actor_id: str) -> RemoteActor | None: ...
    def put_remote_actor(self, actor: RemoteActor) -> None: ...

    # -- seen activity ids ------------------------------------------------------------------
    def mark_seen(self, activity_id: str, now: datetime) -> bool:
        """Record the id; False if it was already recorded (safe against concurrent inboxes)."""
        ...

    def prune_seen(self, older_than: datetime) -> int: ...

    # -- blocks -----------------------------------------------------------------------------
    def add_block(self, kind: BlockKind, value: str, now: datetime) -> bool:
        """Domains are stored lower-case without a port; False if already blocked."""
        ...

    def remove_block(self, kind: BlockKind, value: str) -> bool: ...
    def list_blocks(self) -> list[Block]: ...
    def is_blocked(self, actor_id: str) -> bool:
        """The actor itself, its host, or any parent domain of its host is blocked."""
        ...

    # -- interactions (likes, boosts, replies) ----------------------------------------------
    def add_interaction(self, item: Interaction, now: datetime) -> bool:
        """False if the id exists, or the actor already liked/boosted that post."""
        ...

    def get_interaction(self, id: str) -> Interaction | None: ...
    def update_interaction(self, item: Interaction) -> bool:
        """Replace every field of the row with this id; False if there is none."""
        ...

    def remove_interaction(self, id: str) -> bool: ...
    def remove_interactions_by(
        self, actor_id: str, object_id: str, kind: InteractionKind
    ) -> int: ...
    def remove_actor_interactions(self, actor_id: str) -> int: ...
    def remove_object_interactions(self, object_ids: Sequence[str]) -> int:
        """Forget every like, boost and reply of these posts (they were removed)."""
        ...

    def set_interaction_state(self, id: str, state: InteractionState) -> bool:
        """Approve, hold or hide one interaction; False if there is none with this id."""
        ...

    def list_interactions(
        self,
        kind: InteractionKind | None = None,
        state: InteractionState | None = None,
        object_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        actor_id: str | None = None,
        public: bool | None = None,
    ) -> list[Interaction]:
        """Oldest first (by `published`, then arrival)."""
        ...

    def find_interaction(self, id_or_url: str) -> Interaction | None:
        """The interaction with this id, else the reply whose `url` (its web page) it is."""
        ...

    # -- profiles of the accounts that interacted -------------------------------------------
    def put_profile(self, profile: ActorProfile) -> None:
        """Insert or replace."""
        ...

    def get_profile(self, actor_id: str) -> ActorProfile | None: ...
    def list_profiles(self, actor_ids: Sequence[str]) -> dict[str, ActorProfile]:
        """The profiles of these actors that are known, by actor id."""
        ...

    def find_avatar(self, digest: str) -> ActorProfile | None:
        """A profile whose avatar has this digest (`ActorProfile.avatar_digest`)."""
        ...

    def count_interactions(
        self, state: InteractionState | None = "approved"
    ) -> dict[str, InteractionCounts]:
        """Counts per post (object id); posts without interactions are absent. Replies that
        are not public are never counted."""
        ...

    # -- flags (reports) --------------------------------------------------------------------
    def add_flag(self, flag: Flag) -> bool: ...
    def count_flags_since(self, actor_id: str, since: datetime) -> int:
        """Reports from `actor_id` received at or after `since` (the per-actor rate limit)."""
        ...

    def list_flags(self, limit: int = 100, offset: int = 0) -> list[Flag]:
        """Newest first."""
        ...

    # -- outbound delivery queue ------------------------------------------------------------
    def enqueue(
        self,
        activity_id: str,
        inboxes: Iterable[str],
        body: str,
        now: datetime,
        signed_by: str | None = None,
        signing_key: str | None = None,
        channel: str = ACTIVITYPUB,
    ) -> int:
        """Queue one delivery per inbox on `channel`, due now, to be signed with the key
        `signed_by` (a key id; None: the main account's) or, pinned, the key with fingerprint
        `signing_key` (ActivityPub rows only: other channels are not signed); returns rows
        added (repeats are no-ops)."""
        ...

    def count_pending_signed_with(self, signing_key: str) -> int:
        """Pending deliveries pinned to the key with this fingerprint."""
        ...

    def claim_due(
        self,
        now: datetime,
        limit: int,
        lease_seconds: int,
        owner: str,
        channels: Sequence[str] | None = None,
    ) -> list[Delivery]:
        """Lease up to `limit` due pending deliveries to `owner`, oldest due first; only those
        of `channels` when given (a sender leaves the rows it cannot send to another).

        A delivery is due when `next_attempt_at <= now` and it has no lease or an expired one.
        Concurrent workers never get the same row. Each claim adds one to `attempts`.
        """
        ...

    def release(self, ids: Sequence[str], owner: str) -> int:
        """Hand back rows `owner` claimed but never sent (a drain's time budget ran out):
        their lease is cleared and the claim's attempt taken back, so they are due at once
        for the next drain, as they were. Rows no longer leased to `owner` are left alone.
        Returns how many were released."""
        ...

    def complete(self, id: str, status: int | None, now: datetime) -> None: ...
    def retry_later(
        self, id: str, next_at: datetime, status: int | None, error: str, now: datetime
    ) -> None: ...
    def give_up(self, id: str, status: int | None, error: str, now: datetime) -> None: ...
    def queue_stats(self) -> QueueStats: ...
    def get_delivery(self, id: str) -> Delivery | None: ...
    def list_deliveries(
        self, state: DeliveryState | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Most recently updated first."""
        ...

    def retry_dead(self, ids: Sequence[str] | None = None, *, now: datetime) -> int:
        """Make dead deliveries (all, or these ids) pending and due now, with attempts reset."""
        ...

    def prune_deliveries(
        self, older_than: datetime, dead_older_than: datetime | None = None
    ) -> int:
        """Delete done deliveries last updated before `older_than`, and dead (given-up) ones
        last updated before `dead_older_than` when it is given."""
        ...

    # -- remote hosts (Mastodon-style availability) -----------------------------------------
    # A host is a host name with its port when not the scheme's default: `example.com`,
    # `example.com:8443` (lower-cased; two ports of one address are two hosts).
    def record_host_failure(self, host: str, now: datetime) -> int:
        """Record today's (UTC) failure; returns the number of distinct failure days."""
        ...

    def record_host_success(self, host: str, now: datetime) -> None:
        """Forget the failure days and clear the unavailable flag."""
        ...

    def set_host_unavailable(self, host: str, unavailable: bool) -> None: ...
    def is_host_unavailable(self, host: str) -> bool: ...
    def get_host(self, host: str) -> HostStatus | None: ...

    # -- our published objects --------------------------------------------------------------
    def get_published(self, object_id: str) -> PublishedObject | None: ...
    def put_published(self, obj: PublishedObject) -> None:
        """Insert or replace; an existing row keeps its `first_published_at`."""
        ...

    def list_published(
        self, state: PublishedState | None = None, limit: int = 1000, offset: int = 0
    ) -> list[PublishedObject]:
        """Ordered by object id."""
        ...

    # -- announcements on other channels ----------------------------------------------------
    def put_announcement(self, item: Announcement) -> None:
        """Insert or replace; an existing row keeps its `created_at`."""
        ...

    def get_announcement(self, id: str) -> Announcement | None: ...
    def latest_announcement(self, destination: str, object_id: str) -> Announcement | None:
        """The newest announcement of the post at `destination` not yet removed."""
        ...

    def remove_announcement(self, id: str) -> bool:
        """Forget an announcement (it was never sent: nothing can edit or remove it)."""
        ...
