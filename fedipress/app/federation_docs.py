"""The static federation documents of a site: WebFinger, the actor, the outbox, one object
per post, featured, followers/following, replies, NodeInfo, host-meta, and Tombstones at ids
that were published once. A build Extension (content/extension.py); the builders are pure."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from fedipress import __version__
from fedipress.app.conversations import Conversations
from fedipress.app.keyfiles import dev_public_key, key_paths, read_public_pem
from fedipress.config import Config, FediverseConfig, TopicAccount
from fedipress.content.extension import BuildContext
from fedipress.content.markdown import make_markdown, render_markdown
from fedipress.content.output import Output, digest
from fedipress.content.pages import Alternate, HeadExtras, PageHook
from fedipress.content.site import Site
from fedipress.documents import activitypub as ap
from fedipress.documents.media import AP_MEDIA_TYPE, JSONObject
from fedipress.documents.nodeinfo import build_nodeinfo, build_nodeinfo_discovery
from fedipress.documents.post import Post, slugify
from fedipress.documents.published_ids import (
    RECORD_FILE,
    PublishedId,
    parse_record,
    reconcile,
    record_version,
    render_record,
)
from fedipress.documents.topics import posts_of
from fedipress.documents.urls import Urls
from fedipress.documents.webfinger import build_jrd, render_host_meta
from fedipress.errors import Diagnostic, SourceLocation, unreadable
from fedipress.federation.publish_plan import version_of
from fedipress.hosting import RedirectRule

FEATURED_FALLBACK = 5  # latest posts shown on a new profile when none is pinned
# Which object version each post's inputs give: spares rebuilding every object to notice edits.
VERSIONS_MEMO = Path(".fedipress") / "cache" / "object-versions.json"


def _json(document: object) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()


class FederationDocuments:
    """Extension writing every static ActivityPub document of a `fediverse:` site."""

    def __init__(
        self,
        site_dir: Path,
        config: Config,
        record_ids: bool = False,
        public_key: Path | None = None,
        conversations: Conversations | None = None,
    ) -> None:
        """`conversations` gives each post its replies, likes and shares; without it they
        are empty."""
        self.site_dir = site_dir
        self.conversations = conversations
        self.config = config
        self.urls = Urls(config)
        self.record_ids = record_ids
        self.public_key = public_key or key_paths(site_dir, config, {}).public
        self.public_pem = read_public_pem(site_dir, config, public_key)
        # Each topic account's public key, by username (FEDERATION.md §13).
        self.topic_pems = {
            a.username: read_public_pem(site_dir, config, public_key, a.username)
            for a in _fedi(config).accounts
        }
        self.topic_keys = [
            dev_public_key(public_key, a)
            if public_key
            else key_paths(site_dir, config, {}, a).public
            for a in self.topic_pems
        ]

    # --- Extension protocol -------------------------------------------------------------

    def input_key(self) -> str:
        """The files besides content that change these documents."""
        stats = []
        for path in (self.public_key, *self.topic_keys, self.site_dir / RECORD_FILE):
            try:
                st = os.stat(path)
                stats.append((str(path), st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stats.append((str(path), 0, 0))
            except OSError as exc:
                raise unreadable(str(path), exc) from None
        return digest(stats)

    def page_hook(self, site: Site) -> PageHook:
        handle = f"@{self.urls.handle()}"
        actor = self.urls.actor()

        def hook(kind: str, post: Post | None) -> HeadExtras:
            # Mastodon's URL search follows <link rel=alternate> on an HTML page to its
            # object (FEDERATION.md §5.8); `fediverse:creator` credits the actor on link cards
            # (FEDERATION.md §5.9).
            if kind == "post" and post is not None:
                return HeadExtras(
                    (Alternate(AP_MEDIA_TYPE, self.urls.post(post.uid)),),
                    (("fediverse:creator", handle),),
                )
            if kind == "home":
                return HeadExtras(
                    (Alternate(AP_MEDIA_TYPE, actor),), (("fediverse:creator", handle),)
                )
            return HeadExtras()

        return hook

    def outputs(self, context: BuildContext) -> list[Output]:
        site, config = context.site, self.config
        urls = self.urls
        posts = site.posts
        base_key = digest(
            [
                __version__,
                "federation",
                repr(config),
                self.public_pem,
                sorted(self.topic_pems.items()),
            ]
        )
        out: list[Output] = []

        def add(url: str, key: list[object], build: Callable[..., object], *args: Any) -> None:
            """One JSON document at `url`, made by `build(*args)` only when it must render."""
            out.append(
                Output(
                    urls.output_path(url),
                    digest([base_key, url, *key]),
                    partial(_render, build, *args),
                )
            )

        record = load_record(self.site_dir)
        now = context.now
        live = [(p.uid, p.post_type or _fedi(config).post_type, p.date) for p in posts if p.date]
        reconciled = reconcile(record, live, now)
        objects: dict[str, dict[str, object]] = {}
        fulls: dict[str, Post] = {}
        edited = self._edits(context, posts, reconciled.record, base_key, fulls)
        if self.record_ids and reconciled.record != record:
            context.site_files[RECORD_FILE] = render_record(reconciled.record).encode()
        for entry in reconciled.gone:
            object_id = urls.post(entry.uid)
            context.diagnostics.append(
                Diagnostic(
                    "warning",
                    f"the post with id '{entry.uid}' was published and is gone: "
                    f"{urls.output_path(object_id)} now serves a Tombstone",
                    SourceLocation(str(self.site_dir / RECORD_FILE)),
                    f"if the post was renamed, add 'id: {entry.uid}' to its front matter",
                )
            )
            deleted = datetime.fromisoformat(entry.deleted) if entry.deleted else now
            # The Tombstone answers at the old id with 410 Gone (ActivityPub §6.4): its body
            # lives at /ap/tombstones/<uid> and a _redirects rule serves it there.
            grave = urls.absolute("/ap/tombstones/" + urls.output_path(object_id).split("/", 2)[2])
            out.append(
                Output(
                    urls.output_path(grave),
                    digest([base_key, "tomb", entry, deleted]),
                    partial(_render, ap.build_tombstone, object_id, entry.type, deleted),
                )
            )
            context.redirects.append(
                RedirectRule("/" + urls.output_path(object_id), "/" + urls.output_path(grave), 410)
            )

        def obj(post: Post) -> dict[str, object]:
            # One object per post per process, shared by its file and its outbox page.
            if post.source not in objects:
                full = fulls.pop(post.source, None) or context.full(post)
                objects[post.source] = ap.build_object(config, full, edited=edited.get(post.uid))
            return objects[post.source]

        def collections(post: Post) -> tuple[JSONObject, JSONObject, JSONObject]:
            if self.conversations is not None:
                return self.conversations.collections(post)
            object_id = urls.post(post.uid)
            return (
                ap.build_replies(config, object_id),
                ap.build_reactions(config, object_id, "Like", 0),
                ap.build_reactions(config, object_id, "Announce", 0),
            )

        def served(post: Post) -> JSONObject:
            # The object at its id carries its collections; the outbox's copy does not.
            return ap.with_interactions(obj(post), *collections(post))

        def collection(post: Post, index: int) -> JSONObject:
            return collections(post)[index]

        for post in posts:
            keys = self.conversations.ap_keys(post) if self.conversations else ("", "", "")
            object_key: list[object] = [context.fingerprint(post), edited.get(post.uid), *keys]
            add(urls.post(post.uid), object_key, served, post)
            add(urls.replies(post.uid), [keys[0]], collection, post, 0)
            add(urls.likes(post.uid), [keys[1]], collection, post, 1)
            add(urls.shares(post.uid), [keys[2]], collection, post, 2)

        fedi = _fedi(config)
        published = min(
            [p.date for p in posts if p.date]
            + [datetime.fromisoformat(e.published) for e in record.values() if e.published],
            default=datetime(1970, 1, 1, tzinfo=UTC),
        )
        add(
            urls.actor(),
            [published],
            lambda: ap.build_actor(
                config,
                self.public_pem,
                published=published,
                summary_html=render_markdown(make_markdown("python"), fedi.summary).strip(),
                avatar_url=fedi.avatar or None,
                header_url=fedi.header or None,
            ),
        )

        for topic in fedi.accounts:
            self._topic_outputs(topic, posts, published, obj, add, context)

        # The outbox: a page is rebuilt only when one of its posts changes.
        size = ap.OUTBOX_PAGE_SIZE
        chunks = [posts[i : i + size] for i in range(0, len(posts), size)]

        def outbox_page(chunk: Sequence[Post], number: int) -> dict[str, object]:
            return ap.build_outbox_page(config, [obj(p) for p in chunk], number, len(chunks))

        add(
            urls.outbox(),
            [len(posts), len(chunks)],
            lambda: ap.build_outbox_collection(config, len(posts), len(chunks)),
        )
        for number, chunk in enumerate(chunks, 1):
            add(
                urls.outbox_page(number),
                [number, len(chunks), [context.fingerprint(p) for p in chunk]],
                outbox_page,
                chunk,
                number,
            )

        pinned = [p for p in posts if p.pinned] or list(posts[:FEATURED_FALLBACK])
        add(
            urls.featured(),
            [[p.uid for p in pinned]],
            lambda: ap.build_featured(config, [urls.post(p.uid) for p in pinned]),
        )
        add(urls.followers(), [], lambda: ap.build_followers(config, None))
        add(urls.following(), [], lambda: ap.build_following(config))
        add(urls.webfinger(), [], lambda: build_jrd(config))
        add(urls.nodeinfo_discovery(), [], lambda: build_nodeinfo_discovery(config))
        last = posts[0].date if posts and posts[0].date else None
        month = int(bool(last and (now - last).days <= 30))
        halfyear = int(bool(last and (now - last).days <= 183))
        for schema in ("2.1", "2.0"):
            add(
                urls.nodeinfo(schema),
                [len(posts), month, halfyear],
                partial(
                    build_nodeinfo,
                    local_posts=len(posts),
                    active_month=month,
                    active_halfyear=halfyear,
                    schema=schema,
                ),
                config,
            )
        out.append(
            Output(
                urls.output_path(urls.host_meta()),
                digest([base_key, "host-meta"]),
                lambda: render_host_meta(config).encode(),
            )
        )
        return out

    def _topic_outputs(
        self,
        topic: TopicAccount,
        posts: Sequence[Post],
        published: datetime,
        obj: Callable[[Post], dict[str, object]],
        add: Callable[..., None],
        context: BuildContext,
    ) -> None:
        """A topic account's documents: actor, outbox of Announces, followers, following."""
        config, name = self.config, topic.username
        urls = self.urls.for_account(name)
        fedi = _fedi(config)
        add(
            urls.actor(),
            [published],
            lambda: ap.build_actor(
                config,
                self.topic_pems[name],
                published=published,
                summary_html=render_markdown(make_markdown("python"), topic.summary).strip(),
                avatar_url=topic.avatar or fedi.avatar or None,
                header_url=topic.header or fedi.header or None,
                account=name,
            ),
        )
        mine = posts_of(topic, posts)
        first = slugify(topic.tags[0])
        if not any(tag.slug == first for post in mine for tag in post.tags):
            # The account's profile `url` is the page of its first tag (FEDERATION.md §13).
            context.diagnostics.append(
                Diagnostic(
                    "warning",
                    f"the account '{name}' links its profile to /tags/{first}/, which has no "
                    "posts: that page does not exist",
                    SourceLocation(config.path),
                    "put first in its 'tags' a tag that has posts",
                )
            )
        size = ap.OUTBOX_PAGE_SIZE
        chunks = [mine[i : i + size] for i in range(0, len(mine), size)]
        add(
            urls.outbox(),
            [len(mine), len(chunks)],
            lambda: ap.build_outbox_collection(config, len(mine), len(chunks), name),
        )

        def outbox_page(chunk: Sequence[Post], number: int) -> dict[str, object]:
            return ap.build_outbox_page(config, [obj(p) for p in chunk], number, len(chunks), name)

        for number, chunk in enumerate(chunks, 1):
            add(
                urls.outbox_page(number),
                [number, len(chunks), [context.fingerprint(p) for p in chunk]],
                outbox_page,
                chunk,
                number,
            )
        add(urls.followers(), [], lambda: ap.build_followers(config, None, name))
        add(urls.following(), [], lambda: ap.build_following(config, name))

    def _edits(
        self,
        context: BuildContext,
        posts: Sequence[Post],
        record: dict[str, PublishedId],
        base_key: str,
        fulls: dict[str, Post],
    ) -> dict[str, datetime]:
        """When each edited post's object last changed, updating `record` in place: the
        object serves it as `updated`, the time a publish's Update carries (FEDERATION.md
        §5.5). An object's version is computed only when its post or the config changed
        since the last build (a memo under .fedipress/cache); `fulls` keeps the posts loaded
        for that, for the objects built next."""
        memo_path = self.site_dir / VERSIONS_MEMO
        try:
            memo = json.loads(memo_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            memo = {}
        memo = memo if isinstance(memo, dict) else {}
        fresh: dict[str, list[str]] = {}
        edited: dict[str, datetime] = {}
        for post in posts:
            if post.date is None:
                continue
            key = digest([base_key, context.fingerprint(post)])
            known = memo.get(post.uid)
            if isinstance(known, list) and len(known) == 2 and known[0] == key:
                version = str(known[1])
            else:
                full = fulls[post.source] = context.full(post)
                version = version_of(ap.build_object(self.config, full))
            fresh[post.uid] = [key, version]
            entry, when = record_version(record.get(post.uid), version, context.now)
            if entry is not None:
                record[post.uid] = entry
            if when is not None:
                edited[post.uid] = when
        if fresh != memo:
            context.site_files[str(VERSIONS_MEMO)] = (json.dumps(fresh) + "\n").encode()
        return edited


def _render(build: Callable[..., object], *args: Any) -> bytes:
    return _json(build(*args))


def _fedi(config: Config) -> FediverseConfig:
    assert config.fediverse is not None
    return config.fediverse


def load_record(site_dir: Path) -> dict[str, PublishedId]:
    """The site's published-ids.json, or an empty record when there is none yet."""
    path = site_dir / RECORD_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise unreadable(str(path), exc) from None
    return parse_record(text, str(path))
