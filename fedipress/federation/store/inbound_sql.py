"""The inbound half of the SQL stores: followers, caches, seen ids, blocks, interactions, flags."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .base import (
    ActorProfile,
    Block,
    BlockKind,
    CachedKey,
    Flag,
    Follower,
    FollowerState,
    Interaction,
    InteractionCounts,
    InteractionKind,
    InteractionState,
    MovedFollower,
    RemoteActor,
    RemoteKey,
)
from .sqlcore import (
    SqlCore,
    format_optional_time,
    format_time,
    normalize_host,
    parse_optional_time,
    parse_time,
    placeholders,
)

_FOLLOWER = (
    "actor_id, inbox, shared_inbox, handle, follow_activity_id, state, created_at, updated_at, "
    "account"
)
_INTERACTION = (
    "id, kind, actor_id, object_id, state, content_html, url, in_reply_to, "
    "published, updated, raw_json, hidden, public, depth, summary"
)
_PROFILE = (
    "actor_id, name, handle, url, avatar_url, avatar_type, avatar_data, avatar_digest, fetched_at"
)
# Queries with many ids are cut into batches below every backend's limit on parameters.
_BATCH = 500


def _follower(row: Sequence[Any]) -> Follower:
    actor_id, inbox, shared_inbox, handle, follow_id, state, created, updated, account = row
    return Follower(
        actor_id,
        inbox,
        shared_inbox,
        handle,
        follow_id,
        state,
        parse_time(created),
        parse_time(updated),
        account,
    )


def _account_filter(account: str | None) -> tuple[list[str], list[object]]:
    """The WHERE parts for one account, or none for every account (None)."""
    return (["account = ?"], [account]) if account is not None else ([], [])


def _interaction(row: Sequence[Any]) -> Interaction:
    return Interaction(
        id=row[0],
        kind=row[1],
        actor_id=row[2],
        object_id=row[3],
        # A hidden row keeps the state it had in its own column (see the migration).
        state="hidden" if row[11] else row[4],
        content_html=row[5],
        url=row[6],
        in_reply_to=row[7],
        published=parse_optional_time(row[8]),
        updated=parse_optional_time(row[9]),
        raw_json=row[10],
        public=bool(row[12]),
        depth=int(row[13]),
        summary=row[14],
    )


def _state_columns(state: InteractionState) -> tuple[str, int]:
    """The `state` and `hidden` columns for a state: hidden rows stay 'approved' underneath,
    so that approving one again is a plain state change."""
    return ("approved", 1) if state == "hidden" else (state, 0)


def _state_filter(state: InteractionState) -> tuple[str, list[object]]:
    if state == "hidden":
        return "hidden = 1", []
    return "state = ? AND hidden = 0", [state]


def _profile(row: Sequence[Any]) -> ActorProfile:
    return ActorProfile(
        actor_id=row[0],
        name=row[1],
        handle=row[2],
        url=row[3],
        fetched_at=parse_time(row[8]),
        avatar_url=row[4],
        avatar_type=row[5],
        avatar_data=base64.b64decode(row[6]) if row[6] is not None else None,
    )


def _domain_candidates(actor_id: str) -> list[str]:
    """The actor's host and every parent domain: a.b.example -> a.b.example, b.example, example."""
    try:
        host = urlsplit(actor_id).hostname
    except ValueError:
        return []
    if not host:
        return []
    labels = host.rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


class InboundSql(SqlCore):
    # -- followers --------------------------------------------------------------------------
    def upsert_follower(self, follower: Follower) -> None:
        f = follower
        self._write(
            f"INSERT INTO followers ({_FOLLOWER}) VALUES ({placeholders(9)}) "
            "ON CONFLICT (account, actor_id) DO UPDATE SET inbox = excluded.inbox, "
            "shared_inbox = excluded.shared_inbox, handle = excluded.handle, "
            "follow_activity_id = excluded.follow_activity_id, state = excluded.state, "
            "updated_at = excluded.updated_at",
            (
                f.actor_id,
                f.inbox,
                f.shared_inbox,
                f.handle,
                f.follow_activity_id,
                f.state,
                format_time(f.created_at),
                format_time(f.updated_at),
                f.account,
            ),
        )

    def get_follower(self, actor_id: str, account: str = "") -> Follower | None:
        row = self._one(
            f"SELECT {_FOLLOWER} FROM followers WHERE account = ? AND actor_id = ?",
            (account, actor_id),
        )
        return _follower(row) if row else None

    def get_follower_by_follow_id(self, follow_activity_id: str) -> Follower | None:
        row = self._one(
            f"SELECT {_FOLLOWER} FROM followers WHERE follow_activity_id = ? "
            "ORDER BY account, actor_id LIMIT 1",
            (follow_activity_id,),
        )
        return _follower(row) if row else None

    def list_followers(
        self,
        state: FollowerState | None = None,
        limit: int = 100,
        offset: int = 0,
        account: str | None = "",
    ) -> list[Follower]:
        where, params = _account_filter(account)
        if state:
            where.append("state = ?")
            params.append(state)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._all(
            f"SELECT {_FOLLOWER} FROM followers {clause} "
            "ORDER BY account, actor_id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_follower(row) for row in rows]

    def count_followers(
        self, state: FollowerState | None = "accepted", account: str | None = ""
    ) -> int:
        where, params = _account_filter(account)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return int(self._one(f"SELECT COUNT(*) FROM followers {clause}", params)[0])

    def remove_follower(self, actor_id: str, account: str | None = "") -> bool:
        where, params = _account_filter(account)
        return (
            self._write(
                f"DELETE FROM followers WHERE {' AND '.join([*where, 'actor_id = ?'])}",
                (*params, actor_id),
            )
            > 0
        )

    def remove_followers_with_inbox(self, inbox: str) -> int:
        return self._write("DELETE FROM followers WHERE inbox = ?", (inbox,))

    def set_follower_state(
        self, actor_id: str, state: FollowerState, now: datetime, account: str = ""
    ) -> bool:
        return (
            self._write(
                "UPDATE followers SET state = ?, updated_at = ? WHERE account = ? AND actor_id = ?",
                (state, format_time(now), account, actor_id),
            )
            > 0
        )

    def follower_inboxes(self, accounts: Sequence[str] = ("",)) -> list[str]:
        if not accounts:
            return []
        # Shared inbox first, as Mastodon's Account.inboxes does (FEDERATION.md §6.1).
        rows = self._all(
            "SELECT DISTINCT COALESCE(NULLIF(shared_inbox, ''), inbox) AS target "
            f"FROM followers WHERE state = 'accepted' AND account IN "
            f"({placeholders(len(accounts))}) ORDER BY target",
            tuple(accounts),
        )
        return [row[0] for row in rows]

    def record_moved_follower(
        self, account: str, actor_id: str, target: str, now: datetime
    ) -> None:
        self._write(
            "INSERT INTO moved_followers (account, actor_id, target, moved_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (account, actor_id) DO UPDATE SET "
            "target = excluded.target, moved_at = excluded.moved_at",
            (account, actor_id, target, format_time(now)),
        )

    def list_moved_followers(self, account: str | None = "") -> list[MovedFollower]:
        where, params = _account_filter(account)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._all(
            "SELECT account, actor_id, target, moved_at FROM moved_followers "
            f"{clause} ORDER BY account, actor_id",
            params,
        )
        return [MovedFollower(row[0], row[1], row[2], parse_time(row[3])) for row in rows]

    # -- remote keys and actors -------------------------------------------------------------
    def get_key(self, key_id: str) -> CachedKey | None:
        row = self._one(
            "SELECT key_id, owner, public_key_pem, fetched_at FROM remote_keys WHERE key_id = ?",
            (key_id,),
        )
        return CachedKey(row[0], row[1], row[2], parse_time(row[3])) if row else None

    def put_key(self, key: RemoteKey, now: datetime) -> None:
        self._write(
            "INSERT INTO remote_keys (key_id, owner, public_key_pem, fetched_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET owner = excluded.owner, "
            "public_key_pem = excluded.public_key_pem, fetched_at = excluded.fetched_at",
            (key.key_id, key.owner, key.public_key_pem, format_time(now)),
        )

    def delete_key(self, key_id: str) -> bool:
        return self._write("DELETE FROM remote_keys WHERE key_id = ?", (key_id,)) > 0

    def get_remote_actor(self, actor_id: str) -> RemoteActor | None:
        row = self._one(
            "SELECT actor_id, inbox, shared_inbox, handle, fetched_at FROM remote_actors "
            "WHERE actor_id = ?",
            (actor_id,),
        )
        return RemoteActor(row[0], row[1], row[2], row[3], parse_time(row[4])) if row else None

    def put_remote_actor(self, actor: RemoteActor) -> None:
        self._write(
            "INSERT INTO remote_actors (actor_id, inbox, shared_inbox, handle, fetched_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (actor_id) DO UPDATE SET inbox = excluded.inbox, "
            "shared_inbox = excluded.shared_inbox, handle = excluded.handle, "
            "fetched_at = excluded.fetched_at",
            (
                actor.actor_id,
                actor.inbox,
                actor.shared_inbox,
                actor.handle,
                format_time(actor.fetched_at),
            ),
        )

    # -- seen activity ids ------------------------------------------------------------------
    def mark_seen(self, activity_id: str, now: datetime) -> bool:
        # The row count, not a prior SELECT, decides: two inboxes racing on one id see 1 and 0.
        return (
            self._write(
                "INSERT INTO seen_activities (id, seen_at) VALUES (?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (activity_id, format_time(now)),
            )
            == 1
        )

    def prune_seen(self, older_than: datetime) -> int:
        return self._write(
            "DELETE FROM seen_activities WHERE seen_at < ?", (format_time(older_than),)
        )

    # -- blocks -----------------------------------------------------------------------------
    @staticmethod
    def _block_value(kind: BlockKind, value: str) -> str:
        return normalize_host(value) if kind == "domain" else value.strip()

    def add_block(self, kind: BlockKind, value: str, now: datetime) -> bool:
        return (
            self._write(
                "INSERT INTO blocks (kind, value, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, value) DO NOTHING",
                (kind, self._block_value(kind, value), format_time(now)),
            )
            == 1
        )

    def remove_block(self, kind: BlockKind, value: str) -> bool:
        return (
            self._write(
                "DELETE FROM blocks WHERE kind = ? AND value = ?",
                (kind, self._block_value(kind, value)),
            )
            > 0
        )

    def list_blocks(self) -> list[Block]:
        rows = self._all("SELECT kind, value, created_at FROM blocks ORDER BY kind, value")
        return [Block(row[0], row[1], parse_time(row[2])) for row in rows]

    def is_blocked(self, actor_id: str) -> bool:
        domains = _domain_candidates(actor_id)
        domain_clause = f" OR (kind = 'domain' AND value IN ({placeholders(len(domains))}))"
        row = self._one(
            "SELECT 1 FROM blocks WHERE (kind = 'actor' AND value = ?)"
            + (domain_clause if domains else "")
            + " LIMIT 1",
            (actor_id.strip(), *domains),
        )
        return row is not None

    # -- interactions -----------------------------------------------------------------------
    @staticmethod
    def _interaction_params(item: Interaction) -> tuple[object, ...]:
        state, hidden = _state_columns(item.state)
        return (
            item.id,
            item.kind,
            item.actor_id,
            item.object_id,
            state,
            item.content_html,
            item.url,
            item.in_reply_to,
            format_optional_time(item.published),
            format_optional_time(item.updated),
            item.raw_json,
            hidden,
            int(item.public),
            item.depth,
            item.summary,
        )

    def add_interaction(self, item: Interaction, now: datetime) -> bool:
        # No conflict target: a repeated id and a second like by the same actor are both no-ops.
        return (
            self._write(
                f"INSERT INTO interactions ({_INTERACTION}, created_at) "
                f"VALUES ({placeholders(16)}) ON CONFLICT DO NOTHING",
                (*self._interaction_params(item), format_time(now)),
            )
            == 1
        )

    def get_interaction(self, id: str) -> Interaction | None:
        row = self._one(f"SELECT {_INTERACTION} FROM interactions WHERE id = ?", (id,))
        return _interaction(row) if row else None

    def update_interaction(self, item: Interaction) -> bool:
        params = self._interaction_params(item)
        return (
            self._write(
                "UPDATE interactions SET kind = ?, actor_id = ?, object_id = ?, state = ?, "
                "content_html = ?, url = ?, in_reply_to = ?, published = ?, updated = ?, "
                "raw_json = ?, hidden = ?, public = ?, depth = ?, summary = ? WHERE id = ?",
                (*params[1:], item.id),
            )
            > 0
        )

    def remove_interaction(self, id: str) -> bool:
        return self._write("DELETE FROM interactions WHERE id = ?", (id,)) > 0

    def remove_interactions_by(self, actor_id: str, object_id: str, kind: InteractionKind) -> int:
        return self._write(
            "DELETE FROM interactions WHERE actor_id = ? AND object_id = ? AND kind = ?",
            (actor_id, object_id, kind),
        )

    def remove_actor_interactions(self, actor_id: str) -> int:
        return self._write("DELETE FROM interactions WHERE actor_id = ?", (actor_id,))

    def remove_object_interactions(self, object_ids: Sequence[str]) -> int:
        removed = 0
        with self._atomic():
            for start in range(0, len(object_ids), _BATCH):
                batch = list(object_ids[start : start + _BATCH])
                removed += self._write(
                    f"DELETE FROM interactions WHERE object_id IN ({placeholders(len(batch))})",
                    batch,
                )
        return removed

    def set_interaction_state(self, id: str, state: InteractionState) -> bool:
        column, hidden = _state_columns(state)
        return (
            self._write(
                "UPDATE interactions SET state = ?, hidden = ? WHERE id = ?", (column, hidden, id)
            )
            > 0
        )

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
        filters = {"kind": kind, "object_id": object_id, "actor_id": actor_id}
        used = {column: value for column, value in filters.items() if value is not None}
        clauses = [f"{column} = ?" for column in used]
        params: list[object] = list(used.values())
        if state is not None:
            clause, values = _state_filter(state)
            clauses.append(clause)
            params += values
        if public is not None:
            clauses.append("public = ?")
            params.append(int(public))
        where = " AND ".join(clauses)
        rows = self._all(
            f"SELECT {_INTERACTION} FROM interactions {'WHERE ' + where if where else ''} "
            "ORDER BY COALESCE(published, created_at), created_at, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_interaction(row) for row in rows]

    def find_interaction(self, id_or_url: str) -> Interaction | None:
        found = self.get_interaction(id_or_url)
        if found is not None:
            return found
        row = self._one(
            f"SELECT {_INTERACTION} FROM interactions WHERE url = ? AND kind = 'reply' "
            "ORDER BY id LIMIT 1",
            (id_or_url,),
        )
        return _interaction(row) if row else None

    def count_interactions(
        self, state: InteractionState | None = "approved"
    ) -> dict[str, InteractionCounts]:
        clause, values = _state_filter(state) if state else ("1 = 1", [])
        rows = self._all(
            f"SELECT object_id, kind, COUNT(*) FROM interactions WHERE {clause} AND public = 1 "
            "GROUP BY object_id, kind",
            values,
        )
        field = {"like": "likes", "announce": "announces", "reply": "replies"}
        counts: dict[str, InteractionCounts] = {}
        for object_id, kind, count in rows:
            current = counts.get(object_id, InteractionCounts())
            counts[object_id] = replace(current, **{field[kind]: int(count)})
        return counts

    # -- profiles ---------------------------------------------------------------------------
    def put_profile(self, profile: ActorProfile) -> None:
        p = profile
        data = base64.b64encode(p.avatar_data).decode("ascii") if p.avatar_data else None
        self._write(
            f"INSERT INTO actor_profiles ({_PROFILE}) VALUES ({placeholders(9)}) "
            "ON CONFLICT (actor_id) DO UPDATE SET name = excluded.name, "
            "handle = excluded.handle, url = excluded.url, avatar_url = excluded.avatar_url, "
            "avatar_type = excluded.avatar_type, avatar_data = excluded.avatar_data, "
            "avatar_digest = excluded.avatar_digest, fetched_at = excluded.fetched_at",
            (
                p.actor_id,
                p.name,
                p.handle,
                p.url,
                p.avatar_url,
                p.avatar_type if data else None,
                data,
                p.avatar_digest,
                format_time(p.fetched_at),
            ),
        )

    def get_profile(self, actor_id: str) -> ActorProfile | None:
        row = self._one(f"SELECT {_PROFILE} FROM actor_profiles WHERE actor_id = ?", (actor_id,))
        return _profile(row) if row else None

    def list_profiles(self, actor_ids: Sequence[str]) -> dict[str, ActorProfile]:
        ids = sorted(set(actor_ids))
        found: dict[str, ActorProfile] = {}
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            rows = self._all(
                f"SELECT {_PROFILE} FROM actor_profiles "
                f"WHERE actor_id IN ({placeholders(len(batch))})",
                batch,
            )
            found.update((row[0], _profile(row)) for row in rows)
        return found

    def find_avatar(self, digest: str) -> ActorProfile | None:
        row = self._one(
            f"SELECT {_PROFILE} FROM actor_profiles WHERE avatar_digest = ? "
            "ORDER BY actor_id LIMIT 1",
            (digest,),
        )
        return _profile(row) if row else None

    # -- flags ------------------------------------------------------------------------------
    def add_flag(self, flag: Flag) -> bool:
        return (
            self._write(
                "INSERT INTO flags (id, actor_id, content, object_ids, received_at, raw_json) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (
                    flag.id,
                    flag.actor_id,
                    flag.content,
                    json.dumps(list(flag.object_ids)),
                    format_time(flag.received_at),
                    flag.raw_json,
                ),
            )
            == 1
        )

    def count_flags_since(self, actor_id: str, since: datetime) -> int:
        row = self._one(
            "SELECT COUNT(*) FROM flags WHERE actor_id = ? AND received_at >= ?",
            (actor_id, format_time(since)),
        )
        return int(row[0])

    def list_flags(self, limit: int = 100, offset: int = 0) -> list[Flag]:
        rows = self._all(
            "SELECT id, actor_id, content, object_ids, received_at, raw_json FROM flags "
            "ORDER BY received_at DESC, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [
            Flag(row[0], row[1], row[2], tuple(json.loads(row[3])), parse_time(row[4]), row[5])
            for row in rows
        ]
