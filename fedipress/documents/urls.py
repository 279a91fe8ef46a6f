"""Where every federation document lives: absolute URLs and output file paths. Pure: no I/O.

Every id is an extensionless file that a static host serves with 200 and no redirect
(FEDERATION.md §10 item 2), so no id may also be a directory holding another id: outbox pages
live in `ap/outbox-pages/`, not under `ap/outbox/`, and a post uid's '/' becomes '~'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from fedipress.config import Config, FediverseConfig

# Characters left alone when an IRI becomes a URI: RFC 3986 reserved and unreserved ones and
# '%' (already-escaped bytes). Everything else, such as non-ASCII letters in a slug, is
# percent-encoded, because Mastodon compares a fetched `id` with the requested URL as
# strings (FEDERATION.md §2.1 item 3) and requests go out percent-encoded.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~-._"
_VERSION = re.compile(r"[A-Za-z0-9_-]{1,64}")

# The paths the inbox function answers (everything else of the site is static files). A
# static host proxies DYNAMIC_PATHS to it (inbox_proxy); WebFinger stays a static file there,
# but a server that sees the query (the preview, the inbox host) answers it too.
INBOX_PATH = "/ap/inbox"
FOLLOWERS_PATH = "/ap/followers"
HEALTH_PATH = "/ap/health"
HOOKS_PATH = "/ap/hooks/"
DEPLOY_HOOK_PATH = HOOKS_PATH + "deploy"
# A scheduler (Vercel Cron, any cron with curl) calls it to send the queue: no traffic needed.
DELIVER_HOOK_PATH = HOOKS_PATH + "deliver"
WEBFINGER_PATH = "/.well-known/webfinger"
# The approved likes, boosts and replies, public and cacheable: what a build that cannot reach
# the store reads, and what the theme's script shows when newer than the page.
INTERACTIONS_PATH = "/ap/interactions"
DYNAMIC_PATHS = (
    INBOX_PATH,
    FOLLOWERS_PATH,
    HEALTH_PATH,
    DEPLOY_HOOK_PATH,
    DELIVER_HOOK_PATH,
    INTERACTIONS_PATH,
)
# Topic accounts (`fediverse.accounts`) live under /ap/topics/<username>/, with the main
# account's layout: actor, outbox, outbox-pages/N, followers, following, announces/<uid>.
TOPICS_PATH = "/ap/topics/"


def topic_path(username: str, name: str) -> str:
    """The site path of a topic account's document: '/ap/topics/rust/actor'."""
    return f"{TOPICS_PATH}{username}/{name}"


def dynamic_paths(config: Config) -> tuple[str, ...]:
    """DYNAMIC_PATHS plus each topic account's followers collection (the live count)."""
    fedi = config.fediverse
    topics = tuple(topic_path(a.username, "followers") for a in fedi.accounts) if fedi else ()
    return DYNAMIC_PATHS + topics


def require_fediverse(config: Config) -> FediverseConfig:
    """The `fediverse` section; raise ValueError when the site is not a Fediverse account."""
    if config.fediverse is None:
        raise ValueError("the site has no 'fediverse' section, so it has no actor")
    return config.fediverse


def to_uri(iri: str) -> str:
    """Percent-encode what a URI may not contain (non-ASCII, spaces); keep existing escapes."""
    return quote(iri, safe=_URI_SAFE)


def _check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise ValueError(f"a version must be 1-64 letters, digits, '-' or '_' (got {version!r})")
    return version


@dataclass(frozen=True)
class Urls:
    """The URL layout of the federation documents of one site, seen from one of its accounts:
    `account` is '' for the main account, else a topic account's username. The account
    decides the actor, its key, outbox, followers and following; posts, the inbox and the
    well-known documents are the site's, whichever account asks."""

    config: Config
    account: str = ""

    def for_account(self, account: str) -> Urls:
        """The layout seen from another account of the site; KeyError for an unknown one."""
        if account:
            require_fediverse(self.config).account(account)
        return Urls(self.config, account)

    def accounts(self) -> list[str]:
        """Every account of the site: '' (the main one), then the topic accounts."""
        fedi = self.config.fediverse
        return ["", *(a.username for a in fedi.accounts)] if fedi else [""]

    def account_of(self, actor_id: str | None) -> str | None:
        """Which account of the site `actor_id` is ('' for the main one), else None."""
        for account in self.accounts():
            if actor_id == Urls(self.config, account).actor():
                return account
        return None

    def _own(self, name: str) -> str:
        """An account document: '/ap/<name>' for the main account (ids are forever: that
        layout stays), '/ap/topics/<username>/<name>' for a topic account."""
        return self.absolute(topic_path(self.account, name) if self.account else f"/ap/{name}")

    def absolute(self, path: str) -> str:
        """The absolute URI of a site path such as '/ap/actor' or '/posts/hello/'."""
        return to_uri(self.config.absolute_url(path))

    def _origin(self) -> str:
        parts = urlsplit(self.config.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def home(self) -> str:
        return self.absolute("/")

    def handle(self) -> str:
        """'user@host': the WebFinger address, on the host of the actor id (FEDERATION.md §1.3)."""
        return f"{self.username()}@{self.config.host}"

    def username(self) -> str:
        return self.account or require_fediverse(self.config).username

    def actor(self) -> str:
        return self._own("actor")

    def key_id(self) -> str:
        # A fragment of the actor id: Mastodon then uses the embedded key without a second
        # fetch (process_account_service.rb `legacy_public_keys`, FEDERATION.md §2.4).
        return self.actor() + "#main-key"

    def inbox(self) -> str:
        """`fediverse.inbox`: a site path, or an absolute URL that may be on another host."""
        inbox = self.config.fediverse.inbox if self.config.fediverse else "/ap/inbox"
        return self.absolute(inbox) if inbox.startswith("/") else to_uri(inbox)

    def shared_inbox(self) -> str:
        # One actor, so one inbox: Mastodon delivers Create/Update/Delete to sharedInbox
        # (FEDERATION.md §2.2).
        return self.inbox()

    def outbox(self) -> str:
        return self._own("outbox")

    def outbox_page(self, number: int) -> str:
        if number < 1:
            raise ValueError(f"outbox pages are numbered from 1 (got {number})")
        return self._own(f"outbox-pages/{number}")

    def followers(self) -> str:
        return self._own("followers")

    def following(self) -> str:
        return self._own("following")

    def featured(self) -> str:
        return self._own("featured")

    def announce(self, uid: str) -> str:
        """A topic account's Announce of a post: one id per account and post."""
        if not self.account:
            raise ValueError("only topic accounts announce the blog's posts")
        return self._own(f"announces/{_encode_uid(uid)}")

    def undo(self, activity_id: str) -> str:
        return f"{activity_id}#undo"

    def post(self, uid: str) -> str:
        """The object id of a post: stable for as long as the post's `uid` is
        (FEDERATION.md §5.5)."""
        return self.absolute(f"/ap/posts/{_encode_uid(uid)}")

    def replies(self, uid: str) -> str:
        return self.absolute(f"/ap/replies/{_encode_uid(uid)}")

    def likes(self, uid: str) -> str:
        return self.absolute(f"/ap/likes/{_encode_uid(uid)}")

    def shares(self, uid: str) -> str:
        return self.absolute(f"/ap/shares/{_encode_uid(uid)}")

    def interactions(self, uid: str | None = None) -> str:
        """The inbox's public document of approved interactions: all, or one post's."""
        path = INTERACTIONS_PATH
        return self.absolute(path + (f"?post={_encode_uid(uid)}" if uid is not None else ""))

    def uid_of(self, object_id: str) -> str:
        """The post uid in an object id made by `post()`; ValueError for any other URL."""
        prefix = self.absolute("/ap/posts/")
        if not object_id.startswith(prefix) or len(object_id) == len(prefix):
            raise ValueError(f"not a post object id of this site: {object_id!r}")
        return unquote(object_id[len(prefix) :]).replace("~", "/")

    def page(self, path: str) -> str:
        """The absolute URL of an HTML page, e.g. `post.url`."""
        return self.absolute(path)

    def create(self, object_id: str) -> str:
        return f"{object_id}#create"

    def update(self, object_id: str, version: str) -> str:
        # One id per edit: Fedify warns that some servers drop an activity id seen before
        # (fedify docs/manual/send.md, FEDERATION.md §5.11). `version` is a short content hash.
        return f"{object_id}#update-{_check_version(version)}"

    def delete(self, object_id: str) -> str:
        return f"{object_id}#delete"

    def move(self, number: int) -> str:
        return f"{self.actor()}#move-{number}"

    def move_record(self) -> str:
        """The published record's key for the account's Move (its target in `uid`)."""
        return f"{self.actor()}#move"

    # RFC 7033 §4 and Mastodon (webfinger.rb `standard_url`) ask the host root, never a
    # sub-path, so the well-known documents ignore the path of base_url.

    def webfinger(self) -> str:
        return self._origin() + "/.well-known/webfinger"

    def host_meta(self) -> str:
        return self._origin() + "/.well-known/host-meta"

    def nodeinfo_discovery(self) -> str:
        return self._origin() + "/.well-known/nodeinfo"

    def nodeinfo(self, schema: str = "2.1") -> str:
        if schema not in ("2.0", "2.1"):
            raise ValueError(f"NodeInfo schema must be 2.0 or 2.1 (got {schema!r})")
        return self.absolute(f"/nodeinfo/{schema}")

    def output_path(self, url: str) -> str:
        """The file, relative to the site root, that serves `url` ('ap/actor').

        The fragment is dropped ('…/ap/actor#main-key' is served by 'ap/actor'); a URL
        ending in '/' maps to its 'index.html'. `/.well-known/…` files are returned relative
        to the site root too: on a site under a sub-path they must be copied to the host root.
        Raises ValueError for a URL that is not served by this site (another host, a query).
        """
        url = url.split("#", 1)[0]
        base = to_uri(self.config.base_url)
        well_known = self._origin() + "/.well-known/"
        if url.startswith(well_known):
            rest = url[len(self._origin()) + 1 :]
        elif url.startswith(base):
            rest = url[len(base) :]
        else:
            raise ValueError(f"{url!r} is not a URL of this site ({base})")
        path = unquote(rest)
        segments = path.split("/")
        if "?" in rest or any(s in (".", "..") for s in segments) or "" in segments[:-1]:
            raise ValueError(f"{url!r} does not name a file of this site")
        return path + "index.html" if path == "" or path.endswith("/") else path


def encode_uid(uid: str) -> str:
    """A post uid as it appears in its ids: '/' as '~', the rest percent-encoded."""
    return _encode_uid(uid)


def _encode_uid(uid: str) -> str:
    # Post uids may contain '/' (front matter `id: 2024/hello`). Kept as '/', uid '2024'
    # would be a file and a directory at once, which no static host can serve, so '/' becomes
    # '~': unreserved in URIs (RFC 3986 §2.3), never in a uid, and no file extension.
    if not uid or "~" in uid:
        raise ValueError(f"a post uid must be non-empty and contain no '~' (got {uid!r})")
    return quote(uid.replace("/", "~"), safe="~-_")
