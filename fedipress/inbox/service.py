"""The inbox function's core: one framework-free object answering InboxRequests.

Routes: `POST /ap/inbox` (personal and shared inbox of every account), `GET /ap/followers`
and `GET /ap/topics/<name>/followers` (the live counts), `GET /ap/health`,
`GET /ap/interactions` (the approved interactions, public; `?post=<uid>` for one post,
`?avatar=<digest>` for an avatar), `GET /.well-known/webfinger` (with the query visible:
400/404 work, and each account), `POST /ap/hooks/deploy` (publish after a deploy) and
`GET`/`POST /ap/hooks/deliver` (a scheduler's call to send the queue: Vercel Cron, any cron
with curl).
The order of checks on a POST follows the issue and Mastodon: content type (415), size
(413), JSON (400), signature (401, or 503 when the key cannot be fetched now), seen before
(202, no second effect), blocked (202, dropped), then the handler; 202 on success. Replies
such as Accepts leave through the store's queue; the sender is woken at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fedipress.app.publish import live_site_reader, publish
from fedipress.app.wiring import Federation
from fedipress.config import Config
from fedipress.documents.activitypub import build_followers
from fedipress.documents.media import AP_MEDIA_TYPE, is_activity_media_type
from fedipress.documents.urls import (
    DELIVER_HOOK_PATH,
    DEPLOY_HOOK_PATH,
    FOLLOWERS_PATH,
    HEALTH_PATH,
    INBOX_PATH,
    INTERACTIONS_PATH,
    TOPICS_PATH,
    WEBFINGER_PATH,
    dynamic_paths,
)
from fedipress.errors import FedipressError, StoreError
from fedipress.federation.activities import InboxHandler, Settings, check_json, check_shape
from fedipress.federation.keys import SigningKey
from fedipress.federation.origins import within_actor
from fedipress.federation.profiles import ProfileFetcher
from fedipress.federation.shown import Shown, build_document, load_shown
from fedipress.federation.signatures import verify_request
from fedipress.federation.store.base import Store
from fedipress.hosting import header_rules, headers_for
from fedipress.inbox.buildhook import DEFAULT_DELAY, BuildHook
from fedipress.inbox.hooks import deploy_request_authentic
from fedipress.inbox.http import InboxRequest, InboxResponse
from fedipress.inbox.webfinger import answer_webfinger

log = logging.getLogger("fedipress.inbox")
MAX_BODY = 1_000_000  # Mastodon's limit too (inboxes_controller.rb, FEDERATION.md §4.1)
# How long the interactions document may be cached (by CDNs and browsers), and how long the
# inbox reuses the one it made when no change went through this process.
INTERACTIONS_MAX_AGE = 60


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InboxOptions:
    max_body: int = MAX_BODY
    deploy_secret: str = ""  # enables POST /ap/hooks/deploy (FEDIPRESS_DEPLOY_SECRET)
    # Accepted HTTP signature schemes (FEDIPRESS_SIGNATURE_SCHEMES). Refusing RFC 9421 makes
    # Fedify and Mastodon 4.7 retry with draft-cavage (FEDERATION.md §4.5): handy to check both.
    signature_schemes: frozenset[str] = frozenset({"cavage", "rfc9421"})
    # Seconds to find a signer's key (FEDIPRESS_KEY_FETCH_TIMEOUT); then 503, retry later.
    key_fetch_timeout: float = 5.0
    # The site's build hook (FEDIPRESS_BUILD_HOOK_URL), called when what the blog shows
    # changed, at most once per `build_hook_delay` seconds (FEDIPRESS_BUILD_HOOK_DELAY).
    build_hook_url: str = ""
    build_hook_delay: float = DEFAULT_DELAY
    # Enables /ap/hooks/deliver, called with `Authorization: Bearer <secret>` (CRON_SECRET,
    # the variable Vercel Cron sends).
    cron_secret: str = ""
    # Seconds a scheduled drain may send for (FEDIPRESS_DRAIN_BUDGET); the function's own
    # time limit must leave room for the store's work around it.
    drain_budget: float = 20.0


@dataclass(frozen=True)
class DrainSummary:
    """What one scheduled drain did: its outcomes, and what is still queued."""

    delivered: int
    retrying: int
    failed: int
    pending: int

    def as_json(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
            "pending": self.pending,
        }


class InboxService:
    """Everything the inbox does, for any adapter. Use `async with` or call `aclose()`."""

    def __init__(self, federation: Federation, options: InboxOptions = InboxOptions()) -> None:
        config = federation.config
        assert config.fediverse is not None  # Federation checked it
        self.federation = federation
        self.config = config
        self.store = federation.store
        self.options = options
        self.now = federation.now
        self.urls = federation.urls
        inbox = urlsplit(self.urls.inbox())
        # Proxies and serverless platforms rewrite Host and the path: verify signatures
        # against what the sender addressed, the public inbox URL (FEDERATION.md §4.4).
        self.public_host = inbox.netloc
        self.public_scheme = inbox.scheme
        self.inbox_path = inbox.path
        self.fetcher = federation.fetcher
        self.keys = federation.keys
        self.sender = federation.sender
        profiles = ProfileFetcher(
            self.fetcher, self._fetch_actor, self.store.get_profile, self.keys.recent_document
        )
        self.handler = InboxHandler(
            self.urls,
            self.store,
            Settings(config.fediverse.manually_approves_followers, config.fediverse.moderation),
            self._fetch_actor,
            self.keys.forget,
            self._fetch_jrd,
            profiles.profile,
        )
        self._sender_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        # Called when what the blog shows changed: the build hook, the preview's rebuild.
        self.shown_listeners: list[Callable[[], None]] = []
        self.build_hook: BuildHook | None = None
        if options.build_hook_url:
            self.build_hook = BuildHook(
                options.build_hook_url,
                options.build_hook_delay,
                site_url=config.base_url,
                allow_private=federation.allow_private,
            )
            self.shown_listeners.append(self.build_hook.changed)
        self._shown_cache: tuple[float, Shown] | None = None

    @classmethod
    def for_site(
        cls,
        config: Config,
        store: Store,
        signer: SigningKey,
        options: InboxOptions = InboxOptions(),
        *,
        allow_private: bool = False,
        now: Callable[[], datetime] = _utcnow,
        account_keys: Mapping[str, SigningKey] | None = None,
    ) -> InboxService:
        """An inbox over a config, store and keys given here (tests, embedding): `signer`
        is the main account's, `account_keys` the topic accounts' by username. The store
        stays the caller's to close."""
        federation = Federation(
            config,
            store,
            signer,
            allow_private=allow_private,
            now=now,
            key_fetch_timeout=options.key_fetch_timeout,
            account_keys=account_keys,
        )
        return cls(federation, options)

    async def __aenter__(self) -> InboxService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._stop.set()
        if self.build_hook is not None:
            await self.build_hook.aclose()
        if self._sender_task is not None:
            self._sender_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender_task
        await self.federation.aclose()

    # --- background sending -----------------------------------------------------------------

    def start_sender(self) -> None:
        """Run the delivery sender in the background of the running event loop (once)."""
        if self.build_hook is not None:
            self.build_hook.run_in_background()  # a long-running server: timers work
        if self._sender_task is None or self._sender_task.done():
            self._sender_task = asyncio.get_running_loop().create_task(self.sender.run(self._stop))

    async def drain_queue(self) -> DrainSummary:
        """A scheduled sending round (an EventBridge schedule, Vercel Cron, a timer): prune
        old rows if due, send what is due within the drain budget, and say what is left.
        The next round picks up where this one stopped."""
        outcomes = await self.sender.drain_and_prune(budget=self.options.drain_budget)
        stats = await asyncio.to_thread(self.store.queue_stats)
        delivered = sum(o.verdict == "done" for o in outcomes)
        failed = sum(o.verdict in ("dead", "gone") for o in outcomes)
        summary = DrainSummary(delivered, len(outcomes) - delivered - failed, failed, stats.pending)
        log.info(
            "scheduled drain: %d delivered, %d to retry, %d failed; %d pending",
            summary.delivered,
            summary.retrying,
            summary.failed,
            summary.pending,
        )
        return summary

    # --- requests ---------------------------------------------------------------------------

    def _route(self, path: str) -> str:
        """The route a received path means. Prefixes that platforms add (an API Gateway stage,
        a base path) are ignored: the inbox's paths end the same way whatever precedes them."""
        if path == self.inbox_path:
            return INBOX_PATH
        for route in (WEBFINGER_PATH, *dynamic_paths(self.config)):
            if path == route or path.endswith(route):
                return route
        return path

    async def handle(self, request: InboxRequest) -> InboxResponse:
        path = self._route(request.path)
        if path.startswith(TOPICS_PATH) and path in dynamic_paths(self.config):
            if request.method not in ("GET", "HEAD"):
                return InboxResponse(405, (("Allow", "GET, HEAD"),))
            return await self._followers(path.removeprefix(TOPICS_PATH).split("/")[0])
        if path == WEBFINGER_PATH and request.method in ("GET", "HEAD"):
            status, headers, body = answer_webfinger(self.config, request.query)
            return InboxResponse(status, tuple(headers), body)
        if path == INBOX_PATH:
            if request.method != "POST":
                return InboxResponse(405, (("Allow", "POST"),))
            return await self._post(request)
        if path == FOLLOWERS_PATH and request.method in ("GET", "HEAD"):
            return await self._followers()
        if path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return await self._health()
        if path == DEPLOY_HOOK_PATH and request.method == "POST":
            return await self._deploy_hook(request)
        if path == INTERACTIONS_PATH and request.method in ("GET", "HEAD"):
            return await self._interactions(request)
        if path == DELIVER_HOOK_PATH and request.method in ("GET", "POST"):
            return await self._deliver_hook(request)
        return InboxResponse.error(404, "not found")

    # --- what the blog shows --------------------------------------------------------------

    def shown_changed(self) -> None:
        """Tell the listeners (build hook, preview) that what the blog shows changed."""
        self._shown_cache = None
        for listener in self.shown_listeners:
            listener()

    async def after_request(self) -> None:
        """What a serverless adapter runs once a request is answered: a build hook call that
        is due."""
        if self.build_hook is not None:
            await self.build_hook.flush_due()

    async def _shown(self) -> Shown:
        cached = self._shown_cache
        if cached is not None and time.monotonic() - cached[0] < INTERACTIONS_MAX_AGE:
            return cached[1]
        shown = await asyncio.to_thread(load_shown, self.store)
        self._shown_cache = (time.monotonic(), shown)
        return shown

    async def _interactions(self, request: InboxRequest) -> InboxResponse:
        """The approved public interactions as JSON (all, or `?post=<uid>`), or an avatar
        (`?avatar=<digest>`). Public and cacheable: nothing held, hidden, blocked or
        non-public is ever in it."""
        query = parse_qs(request.query)
        cache = f"public, max-age={INTERACTIONS_MAX_AGE}"
        if "avatar" in query:
            profile = await asyncio.to_thread(self.store.find_avatar, query["avatar"][0])
            if profile is None or profile.avatar_data is None or not profile.avatar_type:
                return InboxResponse.error(404, "no such avatar")
            shown = await self._shown()
            if profile.actor_id not in shown.profiles:
                return InboxResponse.error(404, "no such avatar")
            return InboxResponse(
                200,
                (
                    ("Content-Type", profile.avatar_type),
                    ("Cache-Control", "public, max-age=31536000, immutable"),
                    ("Access-Control-Allow-Origin", "*"),
                    ("X-Content-Type-Options", "nosniff"),
                ),
                profile.avatar_data,
            )
        shown = await self._shown()
        if "post" in query:
            try:
                object_id = self.urls.post(query["post"][0].replace("~", "/"))
            except ValueError:
                return InboxResponse.error(400, "the post parameter is not a post id")
            shown = shown.for_objects([object_id])
        interactions = self.urls.interactions()
        document = build_document(shown, lambda digest: f"{interactions}?avatar={digest}")
        body = (json.dumps(document, ensure_ascii=False, sort_keys=True) + "\n").encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = (
            ("Content-Type", "application/json"),
            ("Cache-Control", cache),
            ("ETag", etag),
            ("Access-Control-Allow-Origin", "*"),
        )
        if request.header("if-none-match") == etag:
            return InboxResponse(304, headers[1:])
        return InboxResponse(200, headers, body)

    async def _deliver_hook(self, request: InboxRequest) -> InboxResponse:
        """A scheduler asks for a sending round. Vercel Cron sends a GET with
        `Authorization: Bearer <CRON_SECRET>`; anything else without the secret gets 401."""
        secret = self.options.cron_secret
        if not secret:
            return InboxResponse.error(404, "the delivery hook is off (set CRON_SECRET)")
        given = (request.header("authorization") or "").strip()
        scheme, _, token = given.partition(" ")
        # Bytes: compare_digest raises TypeError on a str with non-ASCII characters.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), secret.encode()
        ):
            return InboxResponse.error(401, "missing or wrong Authorization: Bearer <CRON_SECRET>")
        try:
            summary = await self.drain_queue()
        except StoreError as exc:
            log.warning("scheduled drain failed, store unavailable: %s", exc)
            return InboxResponse.error(503, "the store is unavailable right now")
        return InboxResponse.json(200, summary.as_json())

    async def _followers(self, account: str = "") -> InboxResponse:
        """The live follower count of an account ('' the main one)."""
        total = await asyncio.to_thread(self.store.count_followers, "accepted", account)
        headers = headers_for(FOLLOWERS_PATH, header_rules(self.config))
        return InboxResponse.json(
            200,
            build_followers(self.config, total, account),
            AP_MEDIA_TYPE,
            tuple((k, v) for k, v in headers if k.lower() != "content-type"),
        )

    async def _health(self) -> InboxResponse:
        try:
            await asyncio.to_thread(self.store.count_followers)
        except Exception as exc:  # any store failure means "not healthy"
            # The detail names the database's user, host and schema: for the log only.
            log.warning("health check failed, store unreachable: %s", exc)
            return InboxResponse.json(503, {"status": "unhealthy"})
        stats = await asyncio.to_thread(self.store.queue_stats)
        return InboxResponse.json(
            200,
            {
                "status": "ok",
                "store": "ok",
                "queue": {"pending": stats.pending, "dead": stats.dead},
                # Whether FEDIPRESS_BUILD_HOOK_URL is set (and its last call worked), for
                # `fedipress doctor`: the hook's URL is a secret and never shown.
                "build_hook": self.build_hook.status if self.build_hook else "off",
            },
        )

    async def _post(self, request: InboxRequest) -> InboxResponse:
        content_type = request.header("content-type") or ""
        if not is_activity_media_type(content_type):
            return InboxResponse.error(415, "expected application/activity+json")
        if len(request.body) > self.options.max_body:
            log.warning(
                "refused a body of %d bytes: over the %d accepted",
                len(request.body),
                self.options.max_body,
            )
            return InboxResponse.error(413, f"bodies over {self.options.max_body} bytes refused")
        try:
            activity: Any = json.loads(request.body)
        except (ValueError, RecursionError):
            # ValueError: not JSON, not UTF-8, or an integer over Python's 4,300 digits;
            # RecursionError: nesting deeper than the parser's stack.
            return InboxResponse.error(400, "the body is not JSON")
        if not isinstance(activity, dict):
            return InboxResponse.error(400, "the body is not a JSON object")
        problem = check_json(activity)
        if problem is not None:
            return InboxResponse.error(400, problem)
        now = self.now()
        verified = await verify_request(
            request.method,
            # The public inbox path, not the one received: platforms rewrite paths
            # (/ap/inbox -> /.netlify/functions/inbox), senders signed the public one.
            self._public_target(request),
            request.headers,
            request.body,
            public_host=self.public_host,
            public_scheme=self.public_scheme,
            fetch_key=self.keys,
            now=now,
        )
        if verified.ok and verified.scheme not in self.options.signature_schemes:
            return InboxResponse.error(401, f"{verified.scheme} signatures are not accepted here")
        if not verified.ok:
            accepted = await self._gone_self_delete(
                activity, verified.gone_status, verified.key_id, verified.gone_url
            )
            if accepted is not None:
                return accepted
            log.info(
                "refused %s from %s: %s",
                activity.get("type"),
                activity.get("actor"),
                verified.reason,
            )
            return InboxResponse.error(verified.status, verified.reason)
        problem = check_shape(activity)
        if problem is not None:
            return InboxResponse.error(400, problem)
        if await asyncio.to_thread(self.store.is_blocked, verified.owner):
            return InboxResponse(202)  # dropped without a word, as Mastodon does for blocks
        try:
            outcome = await self.handler.handle(activity, verified.owner, now)
        except StoreError as exc:  # the database is unreachable: the sender retries later
            log.warning("store failed on %s from %s: %s", activity["id"], verified.owner, exc)
            return InboxResponse.error(503, "the store is unavailable right now")
        log.info(
            "%s %s from %s: %s",
            outcome.status,
            activity.get("type"),
            verified.owner,
            outcome.effect,
        )
        if outcome.queued:
            self.sender.wake.set()
        if outcome.shown:
            self.shown_changed()
        if outcome.status >= 400:
            return InboxResponse.error(outcome.status, outcome.effect)
        return InboxResponse(outcome.status)

    def _public_target(self, request: InboxRequest) -> str:
        return f"{self.inbox_path}?{request.query}" if request.query else self.inbox_path

    async def _gone_self_delete(
        self, activity: dict[str, Any], gone: int | None, key_id: str, gone_url: str
    ) -> InboxResponse | None:
        """A deleted account's Delete of itself, whose key now answers 410: accept it without
        a signature we could check; a 404 proves nothing (FEDERATION.md §4.4, the SWICG report).
        The gone key must be the actor's own (`actor#…` or GoToSocial's `actor/main-key`),
        and so must the URL that answered 410 after redirects, both compared in normal form:
        any other URL answering 410 (`actor/../other`, a redirect to another account) would
        let anyone delete any follower."""
        actor = activity.get("actor")
        target = activity.get("object")
        target_id = target.get("id") if isinstance(target, dict) else target
        if activity.get("type") != "Delete" or gone != 410 or target_id != actor:
            return None
        activity_id = activity.get("id")
        if not isinstance(activity_id, str) or not isinstance(actor, str):
            return None
        if not (within_actor(key_id, actor) and within_actor(gone_url, actor)):
            return None
        if await asyncio.to_thread(self._forget_deleted_actor, activity_id, actor):
            self.shown_changed()
        log.info("accepted the self-Delete of %s (its key is gone)", actor)
        return InboxResponse(202)

    def _forget_deleted_actor(self, activity_id: str, actor: str) -> bool:
        """Forget the actor; True when some of what the blog shows was theirs."""
        with self.store.transaction():
            if not self.store.mark_seen(activity_id, self.now()):
                return False
            self.store.remove_follower(actor, None)
            return self.store.remove_actor_interactions(actor) > 0

    async def _deploy_hook(self, request: InboxRequest) -> InboxResponse:
        """A deploy finished: read the live site's objects and publish what changed."""
        if not self.options.deploy_secret:
            return InboxResponse.error(404, "the deploy hook is off (set FEDIPRESS_DEPLOY_SECRET)")
        now = self.now()
        auth = deploy_request_authentic(request, self.options.deploy_secret, now.timestamp())
        if not auth.ok:
            return InboxResponse.error(401, auth.reason)
        if not await asyncio.to_thread(self._first_use, auth.replay_key, now):
            return InboxResponse.error(409, "this deploy hook signature was already used")
        try:
            result = await publish(self.federation, live_site_reader(self.federation))
        except FedipressError as exc:
            return InboxResponse.error(502, exc.message)
        return InboxResponse.json(
            202,
            {
                "created": result.created,
                "updated": result.updated,
                "deleted": result.deleted,
                "recorded": result.recorded,
                "queued": result.queued,
            },
        )

    def _first_use(self, key: str, now: datetime) -> bool:
        """Remember a deploy hook signature; False if it was seen before (a replay). Kept in
        the seen-ids table, so every process sharing the store refuses it."""
        return self.store.mark_seen(key, now)

    async def _fetch_actor(self, url: str) -> dict[str, Any] | None:
        result = await self.fetcher.fetch_json(url)
        return result.document if result.document is not None else None

    async def _fetch_jrd(self, url: str) -> dict[str, Any] | None:
        result = await self.fetcher.fetch_jrd(url)
        return result.document
