"""Announcing posts in a Matrix room: a channel of the delivery queue (delivery.Channel).

`queue_announcements` turns a publish plan into rows of the store's delivery queue, in the
publish transaction: a new post is announced, an edit edits the announcement (`m.replace`),
a removal redacts it. `MatrixChannel` sends those rows with the client-server API; the
sender's leases, retries and per-host limits apply as to any delivery.

Exactly once, as far as the room can tell: each row's transaction id is derived from the
room and the change (documents/matrix.py, txn_id), and the homeserver answers a repeated
`PUT .../send/{txnId}` from the same access token with the first event instead of a new one
(spec: transaction identifiers). So a retry, or a worker killed between the request and the
recording of its outcome, posts nothing twice.

The announcement's event id is kept in the store (`announcements`), written in the
transaction that records the outcome; an edit or a redaction queued before it is known
waits for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import anyio
import httpx

from fedipress.config import MatrixConfig
from fedipress.documents.matrix import edit_content, message_content, post_text, txn_id
from fedipress.documents.media import JSONObject
from fedipress.federation.delivery import Attempt, Outcome, RetryPolicy, Verdict
from fedipress.federation.ssrf import GuardedTransport, check_destination
from fedipress.federation.store.base import Announcement, Delivery, Store

CHANNEL = "matrix"
API = "/_matrix/client/v3"
MAX_ANSWER_BYTES = 64 * 1024  # of a homeserver's answer; an event id answer is ~60 bytes
WAITING = "waiting for the announcement to be sent"
Kind = Literal["announce", "edit", "redact"]


def destination(matrix: MatrixConfig) -> str:
    """Where a room's rows go: the room's URL on the homeserver (for the per-host limits, the
    address checks and the queue listing)."""
    return f"{matrix.homeserver}{API}/rooms/{quote(matrix.room, safe='')}"


@dataclass(frozen=True)
class Job:
    """What one Matrix row asks for; stored as the row's JSON body."""

    kind: Kind
    homeserver: str
    room: str
    txn: str
    announcement: str  # the id of the announcement this row makes, edits or redacts
    object_id: str
    content: JSONObject | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


def queue_announcements(
    store: Store,
    matrix: MatrixConfig,
    change: str,
    object_id: str,
    activity: Mapping[str, Any] | None,
    now: datetime,
) -> int:
    """Queue what the room should see of one planned change (create, update, delete); call
    it inside the publish transaction. Returns rows added. A post announced before the room
    was configured (or whose announcement was redacted) has nothing to edit or remove."""
    if not matrix.announces or activity is None:
        return 0
    where = destination(matrix)
    activity_id = str(activity["id"])
    txn = txn_id(where, activity_id)
    obj = activity.get("object")
    base = Job("announce", matrix.homeserver, matrix.room, txn, txn, object_id)
    if change == "create" and isinstance(obj, Mapping):
        if store.get_announcement(txn) is None:
            store.put_announcement(Announcement(txn, where, object_id, None, now, now))
        job = dataclasses.replace(base, content=message_content(post_text(obj)))
    elif change in ("update", "delete"):
        wanted = matrix.edits if change == "update" else matrix.removals
        latest = store.latest_announcement(where, object_id) if wanted else None
        if latest is None:
            return 0
        if change == "update" and isinstance(obj, Mapping):
            content = message_content(post_text(obj))
            job = dataclasses.replace(base, kind="edit", announcement=latest.id, content=content)
        else:
            store.put_announcement(dataclasses.replace(latest, removed_at=now, updated_at=now))
            job = dataclasses.replace(base, kind="redact", announcement=latest.id)
    else:
        return 0
    return store.enqueue(activity_id, [where], job.to_json(), now, channel=CHANNEL)


@dataclass
class MatrixChannel:
    """Sends Matrix rows with the access token of the account that posts (a user or a bot in
    the room). Every request goes through the SSRF guard; each row gets `deadline` seconds in
    all, the room alias lookup included."""

    store: Store
    token: str
    user_agent: str
    allow_private: bool = False
    deadline: float = 30.0
    policy: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    client: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self._own_client = self.client is None
        if self.client is None:
            self.client = httpx.AsyncClient(
                transport=GuardedTransport(self.allow_private),
                timeout=httpx.Timeout(self.deadline, connect=5.0, read=10.0),
                follow_redirects=False,
                trust_env=False,
            )
        self._room_ids: dict[tuple[str, str], str] = {}

    async def aclose(self) -> None:
        if self._own_client and self.client is not None:
            await self.client.aclose()

    # -- Channel ----------------------------------------------------------------------------
    def verdict(self, status: int | None) -> Verdict:
        """As for ActivityPub, but a 410 removes no follower: it is one more refusal."""
        verdict = self.policy.verdict(status)
        return "dead" if verdict == "gone" else verdict

    async def send(self, delivery: Delivery) -> Attempt:
        try:
            job = Job.from_json(delivery.body)
        except (ValueError, TypeError) as exc:
            return Attempt(400, f"not a Matrix row: {exc}")
        try:
            with anyio.fail_after(self.deadline):
                refusal = await check_destination(delivery.inbox_url, self.allow_private)
                if refusal is not None:
                    return Attempt(403, f"refused: {refusal}")  # never retried
                return await self._send(job)
        except TimeoutError:
            return Attempt(None, f"no answer within {self.deadline} s")
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}")

    def settle(self, store: Store, delivery: Delivery, outcome: Outcome, now: datetime) -> None:
        """Remember the announcement's event id once it is sent; forget an announcement that
        was given up, so that nothing waits for it any longer."""
        job = Job.from_json(delivery.body)
        if job.kind != "announce":
            return
        if outcome.verdict == "done" and outcome.remote_id:
            known = store.get_announcement(job.announcement)
            row = known or Announcement(
                job.announcement, delivery.inbox_url, job.object_id, None, now, now
            )
            store.put_announcement(
                dataclasses.replace(row, remote_id=outcome.remote_id, updated_at=now)
            )
        elif outcome.verdict in ("dead", "gone"):
            store.remove_announcement(job.announcement)

    # -- requests ---------------------------------------------------------------------------
    async def _send(self, job: Job) -> Attempt:
        announcement = None
        if job.kind != "announce":
            # What it changes first: waiting needs no request.
            announcement = await asyncio.to_thread(self.store.get_announcement, job.announcement)
            if announcement is None:
                # Given up (or never queued): there is no message to change.
                return Attempt(404, "the announcement was never sent")
            if announcement.remote_id is None:
                return Attempt(None, WAITING, waiting=True)
        room_id = await self._room_id(job)
        if isinstance(room_id, Attempt):
            return room_id
        room = quote(room_id, safe="")
        txn = quote(job.txn, safe="")
        if announcement is None:
            status, answer, retry_after = await self._put(
                job, f"/rooms/{room}/send/m.room.message/{txn}", job.content or {}
            )
            event_id = answer.get("event_id") if status is not None and status < 300 else None
            if status is not None and 200 <= status < 300 and not isinstance(event_id, str):
                return Attempt(None, "the homeserver's answer has no event_id")
            return self._attempt(status, answer, retry_after, event_id)
        assert announcement.remote_id is not None
        event = quote(announcement.remote_id, safe="")
        if job.kind == "edit":
            path = f"/rooms/{room}/send/m.room.message/{txn}"
            body = edit_content(job.content or {}, announcement.remote_id)
        else:
            path = f"/rooms/{room}/redact/{event}/{txn}"
            body = {"reason": "The post was removed from the blog."}
        status, answer, retry_after = await self._put(job, path, body)
        return self._attempt(status, answer, retry_after, None)

    async def _room_id(self, job: Job) -> str | Attempt:
        """The room id: as configured, or an alias resolved once (spec: room aliases)."""
        if job.room.startswith("!"):
            return job.room
        key = (job.homeserver, job.room)
        if key in self._room_ids:
            return self._room_ids[key]
        url = f"{job.homeserver}{API}/directory/room/{quote(job.room, safe='')}"
        status, answer, retry_after = await self._request("GET", url, None)
        room_id = answer.get("room_id")
        if status == 200 and isinstance(room_id, str) and room_id.startswith("!"):
            self._room_ids[key] = room_id
            return room_id
        attempt = self._attempt(status, answer, retry_after, None)
        return dataclasses.replace(attempt, error=f"room {job.room}: {attempt.error or status}")

    async def _put(
        self, job: Job, path: str, body: Mapping[str, Any]
    ) -> tuple[int | None, dict[str, Any], timedelta | None]:
        return await self._request("PUT", f"{job.homeserver}{API}{path}", body)

    async def _request(
        self, method: str, url: str, body: Mapping[str, Any] | None
    ) -> tuple[int | None, dict[str, Any], timedelta | None]:
        """One request: (status, the answer's JSON object or {}, Retry-After)."""
        assert self.client is not None
        headers = {
            "Authorization": f"Bearer {self.token}",
            "User-Agent": self.user_agent,
            "Accept": "application/json",
            "Accept-Encoding": "identity",  # the answer is read raw, capped
        }
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        request = self.client.build_request(method, url, content=content, headers=headers)
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            raw = bytearray()
            async for chunk in response.aiter_raw():
                raw += chunk
                if len(raw) > MAX_ANSWER_BYTES:
                    break
        finally:
            await response.aclose()
        answer = _json_object(bytes(raw[:MAX_ANSWER_BYTES]))
        return response.status_code, answer, _retry_after(response, answer)

    def _attempt(
        self,
        status: int | None,
        answer: Mapping[str, Any],
        retry_after: timedelta | None,
        remote_id: str | None,
    ) -> Attempt:
        if status is not None and 200 <= status < 300:
            return Attempt(status, "", None, remote_id)
        error = " ".join(str(answer.get(k, "")) for k in ("errcode", "error")).strip()
        return Attempt(status, error or f"HTTP {status}", retry_after)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(response: httpx.Response, answer: Mapping[str, Any]) -> timedelta | None:
    """M_LIMIT_EXCEEDED's `retry_after_ms`, else a Retry-After header in seconds."""
    millis = answer.get("retry_after_ms")
    if isinstance(millis, int) and not isinstance(millis, bool) and millis >= 0:
        return timedelta(milliseconds=millis)
    header = response.headers.get("retry-after", "").strip()
    return timedelta(seconds=int(header)) if header.isdigit() else None
