"""Conversations come home: the approved likes, boosts and replies the inbox stored, read by
the build and shown under each post (the `conversation` template variable), in the post's
ActivityPub `replies`, `likes` and `shares`, and as avatar files the blog serves itself.

Where the interactions come from (docs/federation.md, "How interactions reach the site"):

1. the inbox's store, when the build can reach it: FEDIPRESS_DATABASE_URL, or the SQLite
   file beside the site (`.fedipress/inbox.db`) when it exists; `fedipress serve` names its
   own;
2. else the inbox's public document over HTTPS (`fediverse.interactions_from`, or
   `inbox_proxy` + `/ap/interactions`), through the guarded fetch path, size-capped;
3. else none.

What was read last is kept in the build cache: when the source cannot be read, the build
warns and shows that, rather than wiping every conversation from the site.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from fedipress.app.wiring import ALLOW_PRIVATE_ENV, DATABASE_ENV, env_flag
from fedipress.config import Config
from fedipress.content.extension import BuildContext
from fedipress.content.output import Output, digest
from fedipress.content.pages import HeadExtras, PageHook
from fedipress.content.site import Site
from fedipress.documents import activitypub as ap
from fedipress.documents.conversation import (
    Conversation,
    Person,
    ReplyInput,
    count,
    initials,
    thread,
)
from fedipress.documents.media import JSONObject
from fedipress.documents.post import Post
from fedipress.documents.urls import INTERACTIONS_PATH, Urls, encode_uid
from fedipress.errors import Diagnostic, FedipressError, SourceLocation
from fedipress.federation.activities import MAX_SUMMARY, sanitize_html
from fedipress.federation.remote_text import (
    MAX_HANDLE,
    MAX_NAME,
    plain_text,
    web_url,
    without_bidi_controls,
)
from fedipress.federation.shown import (
    AvatarRef,
    Shown,
    build_document,
    load_shown,
    parse_document,
    with_avatar,
)
from fedipress.federation.store import open_store
from fedipress.federation.store.base import ActorProfile, Interaction
from fedipress.federation.store.url import parse_database_url

CACHE_DIR = Path(".fedipress") / "cache"
AVATAR_CACHE = Path(".fedipress") / "cache" / "avatars"
AVATAR_DIR = "avatars"  # in the output: /avatars/<digest>.<ext>
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # the inbox's public document, fetched by a build
AVATAR_FETCHES = 8  # avatars fetched at once
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


@dataclass
class Read:
    """The interactions a build shows, where they came from, and what went wrong."""

    shown: Shown
    source: str  # for messages: 'the store', a URL, or '' when there is none
    diagnostics: list[Diagnostic] = field(default_factory=list)


def interactions_url(config: Config) -> str:
    """The inbox's public document a build reads when it cannot reach the store, or ''."""
    fedi = config.fediverse
    if fedi is None:
        return ""
    if fedi.interactions_from:
        return fedi.interactions_from
    if fedi.inbox_proxy:
        return fedi.inbox_proxy.rstrip("/") + INTERACTIONS_PATH
    return ""


def read_interactions(
    site_dir: Path,
    config: Config,
    environ: Mapping[str, str],
    database_url: str | None = None,
) -> Read:
    """What the build shows, read from the first source that exists (module docstring)."""
    url = database_url or environ.get(DATABASE_ENV) or None
    location = parse_database_url(url, site_dir)
    if url is not None or Path(location.target).is_file():
        # No fallback copy here: a store that fails is a setting to fix, not a network blip.
        source = f"the inbox's store ({location.backend})"
        try:
            return Read(_from_store(url, site_dir), source)
        except FedipressError as exc:
            hint = "check FEDIPRESS_DATABASE_URL, and that the database is reachable"
            return Read(Shown(), source, [_unreadable(site_dir, source, exc.message, "none", hint)])
    remote = interactions_url(config)
    if remote:
        allow_private = env_flag(environ, ALLOW_PRIVATE_ENV)
        return _cached_on_failure(
            site_dir,
            remote,
            remote,
            lambda: asyncio.run(_from_document(remote, site_dir, allow_private)),
        )
    return Read(Shown(), "")


def _from_store(url: str | None, site_dir: Path) -> Shown:
    store = open_store(url, site_dir)
    try:
        return load_shown(store)
    finally:
        store.close()


def _cached_on_failure(site_dir: Path, source: str, where: str, read: Callable[[], Shown]) -> Read:
    """`read()`, remembered in the build cache (one file per source, `where`); on failure
    the remembered copy, with a warning naming the source."""
    cache = site_dir / CACHE_DIR / f"interactions-{digest([where])[:16]}.json"
    try:
        shown = read()
    except (FedipressError, OSError, ValueError) as exc:
        problem = exc.message if isinstance(exc, FedipressError) else str(exc)
        kept = _read_cache(site_dir, cache)
        fallback = "the interactions read last time" if kept.interactions else "none"
        hint = "check fediverse.interactions_from, and that the inbox answers GET /ap/interactions"
        return Read(kept, source, [_unreadable(site_dir, source, problem, fallback, hint)])
    _write_cache(site_dir, cache, shown)
    return Read(shown, source)


def _unreadable(site_dir: Path, source: str, problem: str, shown: str, hint: str) -> Diagnostic:
    return Diagnostic(
        "warning",
        f"could not read the likes, boosts and replies from {source}: {problem}; "
        f"the pages show {shown}",
        SourceLocation(str(site_dir / "fedipress.yaml")),
        hint,
    )


def _write_cache(site_dir: Path, cache: Path, shown: Shown) -> None:
    """The document and the avatars, so a later failed read can show them."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(build_document(shown), ensure_ascii=False, sort_keys=True)
        if not cache.is_file() or cache.read_text(encoding="utf-8") != text:
            cache.write_text(text, encoding="utf-8")
        for profile in shown.profiles.values():
            if profile.avatar_data is not None and profile.avatar_digest:
                path = site_dir / AVATAR_CACHE / profile.avatar_digest
                if not path.is_file():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(profile.avatar_data)
    except OSError:
        pass  # a cache: the build goes on without it


def _read_cache(site_dir: Path, cache: Path) -> Shown:
    try:
        document = json.loads(cache.read_text(encoding="utf-8"))
        shown, avatars = parse_document(document, datetime.now(UTC))
    except (OSError, ValueError):
        return Shown()
    return _with_cached_avatars(site_dir, shown, avatars)


def _with_cached_avatars(site_dir: Path, shown: Shown, avatars: Mapping[str, AvatarRef]) -> Shown:
    profiles = dict(shown.profiles)
    for actor_id, ref in avatars.items():
        data = _cached_avatar(site_dir, ref)
        if data is not None and actor_id in profiles:
            profiles[actor_id] = with_avatar(profiles[actor_id], ref.media_type, data)
    return Shown(shown.interactions, profiles)


def _cached_avatar(site_dir: Path, ref: AvatarRef) -> bytes | None:
    try:
        data = (site_dir / AVATAR_CACHE / ref.digest).read_bytes()
    except OSError:
        return None
    return data if _digest(data) == ref.digest else None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


async def _from_document(url: str, site_dir: Path, allow_private: bool) -> Shown:
    """The inbox's public document and the avatars it names, fetched unsigned through the
    guarded fetch path (the SSRF guard, redirects checked, size caps)."""
    # Imported here: only a build that reads over the network needs httpx.
    from fedipress.federation.fetch import Fetcher
    from fedipress.federation.profiles import AVATAR_TYPES, MAX_AVATAR_BYTES, sniff_image

    async with Fetcher(signer=None, site_url=url, allow_private=allow_private) as fetcher:
        result = await fetcher.fetch_bytes(
            url, "application/json", frozenset({"application/json"}), MAX_DOCUMENT_BYTES
        )
        if result.data is None:
            raise ValueError(f"{result.failure} ({result.reason})")
        shown, avatars = parse_document(json.loads(result.data), datetime.now(UTC))
        shown = _with_cached_avatars(site_dir, shown, avatars)
        missing = {
            a: ref
            for a, ref in avatars.items()
            if a in shown.profiles and shown.profiles[a].avatar_data is None
        }
        limit = asyncio.Semaphore(AVATAR_FETCHES)

        async def fetch(ref: AvatarRef) -> bytes | None:
            async with limit:
                got = await fetcher.fetch_bytes(
                    f"{url}?avatar={ref.digest}",
                    ", ".join(sorted(AVATAR_TYPES)),
                    AVATAR_TYPES,
                    MAX_AVATAR_BYTES,
                    signed=False,
                )
            data = got.data
            if data is None or _digest(data) != ref.digest or sniff_image(data) != got.media_type:
                return None  # not what the document named: initials instead
            return data

        fetched = await asyncio.gather(*(fetch(ref) for ref in missing.values()))
    profiles = dict(shown.profiles)
    for (actor_id, ref), data in zip(missing.items(), fetched, strict=True):
        if data is not None:
            profiles[actor_id] = with_avatar(profiles[actor_id], ref.media_type, data)
    return Shown(shown.interactions, profiles)


# --- per post ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostInteractions:
    """One post's shown interactions: replies (all depths, oldest first), likes, shares."""

    object_id: str
    roots: tuple[str, ...]  # the ids a reply to the post itself answers: object id, page URL
    replies: tuple[Interaction, ...]
    likes: tuple[Interaction, ...]
    shares: tuple[Interaction, ...]

    def direct_reply_ids(self) -> list[str]:
        return [r.id for r in self.replies if r.in_reply_to in self.roots or r.depth == 0]


class Conversations:
    """The build extension: reads the interactions once per build and gives each post page
    its `conversation`, the federation documents their collections, and the site the
    avatar files. Keys are per post, so a new reply rewrites that post's files only."""

    def __init__(
        self,
        site_dir: Path,
        config: Config,
        environ: Mapping[str, str] | None = None,
        database_url: str | None = None,
    ) -> None:
        self.site_dir = site_dir
        self.config = config
        self.urls = Urls(config)
        self.environ = os.environ if environ is None else environ
        self.database_url = database_url
        self._read: Read | None = None
        self._by_object: dict[str, list[Interaction]] | None = None
        self._of: dict[str, PostInteractions] = {}
        self._people: dict[str, Person] = {}
        self._profile_keys: dict[str, object] = {}
        self._collections: dict[str, tuple[JSONObject, JSONObject, JSONObject]] = {}

    # --- reading -----------------------------------------------------------------------

    @property
    def read(self) -> Read:
        if self._read is None:
            self._read = read_interactions(
                self.site_dir, self.config, self.environ, self.database_url
            )
        return self._read

    @property
    def profiles(self) -> Mapping[str, ActorProfile]:
        return self.read.shown.profiles

    def _index(self) -> dict[str, list[Interaction]]:
        if self._by_object is None:
            index: dict[str, list[Interaction]] = {}
            for item in self.read.shown.interactions:
                index.setdefault(item.object_id, []).append(item)
            self._by_object = index
        return self._by_object

    def of(self, post: Post) -> PostInteractions:
        found = self._of.get(post.source)
        if found is None:
            found = self._of[post.source] = self._find(post)
        return found

    def _find(self, post: Post) -> PostInteractions:
        object_id = self.urls.post(post.uid)
        roots = (object_id, self.urls.page(post.url))
        index = self._index()
        items = [i for root in roots for i in index.get(root, ())]
        items.sort(key=lambda i: (i.published or _EPOCH, i.id))
        return PostInteractions(
            object_id,
            roots,
            tuple(i for i in items if i.kind == "reply"),
            tuple(i for i in items if i.kind == "like"),
            tuple(i for i in items if i.kind == "announce"),
        )

    def page_key(self, post: Post) -> str:
        """Changes when anything the post page shows of its conversation changes."""
        found = self.of(post)
        items = found.replies + found.likes + found.shares
        if not items:
            return ""
        actors = sorted({i.actor_id for i in items})
        return digest(
            [
                [_item_key(i) for i in items],
                [self._profile_key(a) for a in actors],
            ]
        )

    def _profile_key(self, actor_id: str) -> object:
        known = self._profile_keys.get(actor_id)
        if known is None:
            known = self._profile_keys[actor_id] = _profile_key(self.profiles.get(actor_id))
        return known

    def ap_keys(self, post: Post) -> tuple[str, str, str]:
        """Keys that change when the post's `replies`, `likes` or `shares` change."""
        found = self.of(post)
        return (
            digest(found.direct_reply_ids()),
            str(len(found.likes)),
            str(len(found.shares)),
        )

    # --- the page ----------------------------------------------------------------------

    def person(self, actor_id: str) -> Person:
        """Who interacted, as the page shows them. Everything is checked again here (plain
        text, http(s) links), whatever wrote the store."""
        known = self._people.get(actor_id)
        if known is None:
            known = self._people[actor_id] = self._person(actor_id)
        return known

    def _person(self, actor_id: str) -> Person:
        profile = self.profiles.get(actor_id)
        tail = plain_text(actor_id.rstrip("/").rsplit("/", 1)[-1].lstrip("@"), MAX_NAME)
        home = web_url(actor_id) or ""
        if profile is None:
            return Person(actor_id, tail or "?", "", home, "", initials(tail))
        handle = plain_text(profile.handle, MAX_HANDLE)
        name = plain_text(profile.name, MAX_NAME) or handle.split("@")[0] or tail or "?"
        avatar = ""
        if profile.avatar_data is not None and profile.avatar_type in _EXTENSIONS:
            avatar = self.config.url(_avatar_path(profile))
        url = web_url(profile.url) or home
        return Person(actor_id, name, f"@{handle}" if handle else "", url, avatar, initials(name))

    def conversation(self, post: Post) -> Conversation:
        found = self.of(post)
        people = {i.actor_id: self.person(i.actor_id) for i in found.replies}
        replies = thread(
            found.roots,
            [
                ReplyInput(
                    r.id,
                    r.actor_id,
                    r.in_reply_to,
                    web_url(r.url) or web_url(r.id),
                    r.published,
                    r.updated,
                    without_bidi_controls(sanitize_html(r.content_html or "")),
                    plain_text(r.summary, MAX_SUMMARY),
                )
                for r in found.replies
            ],
            people,
        )
        return Conversation(
            found.object_id,
            replies,
            count(replies),
            tuple(self.person(i.actor_id) for i in found.likes),
            tuple(self.person(i.actor_id) for i in found.shares),
            self._own_document(post),
        )

    def _own_document(self, post: Post) -> str:
        """The site path of the post's public document, when the inbox answers on the
        site's own origin (proxied, on the same host, or `fedipress serve`); else ''."""
        fedi = self.config.fediverse
        inbox = fedi.inbox if fedi else "/ap/inbox"
        if not inbox.startswith("/") and not (fedi and fedi.inbox_proxy):
            if urlsplit(inbox).netloc != urlsplit(self.config.base_url).netloc:
                return ""
        return self.config.url(f"{INTERACTIONS_PATH}?post={encode_uid(post.uid)}")

    # --- the Extension protocol --------------------------------------------------------

    def input_key(self) -> str:
        shown = self.read.shown
        return digest(
            [
                [
                    (i.id, i.kind, i.object_id, i.updated, i.content_html)
                    for i in shown.interactions
                ],
                [_profile_key(p) for _, p in sorted(shown.profiles.items())],
            ]
        )

    def page_hook(self, site: Site) -> PageHook:
        def hook(kind: str, post: Post | None) -> HeadExtras:
            if kind != "post" or post is None:
                return HeadExtras()
            return HeadExtras(
                context=_LazyConversation(self, post), key=self.page_key(post) or "none"
            )

        return hook

    def outputs(self, context: BuildContext) -> list[Output]:
        context.diagnostics.extend(self.read.diagnostics)
        used: dict[str, ActorProfile] = {}
        for post in context.site.posts:
            found = self.of(post)
            for item in found.replies + found.likes + found.shares:
                profile = self.profiles.get(item.actor_id)
                if profile is not None and profile.avatar_data is not None:
                    used.setdefault(_avatar_path(profile), profile)
        return [
            Output(path.lstrip("/"), digest(["avatar", path]), _bytes(profile.avatar_data))
            for path, profile in sorted(used.items())
            if profile.avatar_data is not None and profile.avatar_type in _EXTENSIONS
        ]

    # --- the ActivityPub collections ----------------------------------------------------

    def collections(self, post: Post) -> tuple[JSONObject, JSONObject, JSONObject]:
        made = self._collections.get(post.source)
        if made is None:
            made = self._collections[post.source] = self._make_collections(post)
        return made

    def _make_collections(self, post: Post) -> tuple[JSONObject, JSONObject, JSONObject]:
        found = self.of(post)
        config = self.config
        return (
            ap.build_replies(config, found.object_id, found.direct_reply_ids()),
            ap.build_reactions(config, found.object_id, "Like", len(found.likes)),
            ap.build_reactions(config, found.object_id, "Announce", len(found.shares)),
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _LazyConversation(Mapping[str, object]):
    """`{"conversation": …}`, threaded only when the page renders (the hook runs for every
    post at plan time, most of which are not rendered again)."""

    def __init__(self, owner: Conversations, post: Post) -> None:
        self.owner = owner
        self.post = post

    def __getitem__(self, key: str) -> object:
        if key != "conversation":
            raise KeyError(key)
        return self.owner.conversation(self.post)

    def __iter__(self) -> Iterator[str]:
        return iter(("conversation",))

    def __len__(self) -> int:
        return 1


def _item_key(i: Interaction) -> object:
    when = (_stamp(i.published), _stamp(i.updated))  # floats: repr() of a datetime is slow
    return (i.id, i.kind, i.actor_id, i.in_reply_to, i.url, when, i.summary, i.content_html)


def _stamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _avatar_path(profile: ActorProfile) -> str:
    return (
        f"/{AVATAR_DIR}/{profile.avatar_digest}.{_EXTENSIONS.get(profile.avatar_type or '', 'img')}"
    )


def _profile_key(profile: ActorProfile | None) -> object:
    if profile is None:
        return None
    return (profile.actor_id, profile.name, profile.handle, profile.url, profile.avatar_digest)


def _bytes(data: bytes | None) -> Callable[[], bytes]:
    payload = data or b""
    return lambda: payload


__all__ = ["Conversations", "Read", "interactions_url", "read_interactions"]
