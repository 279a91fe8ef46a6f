"""The site configuration: `fedipress.yaml` parsed once into a frozen Config.

`parse_config(text, path)` is pure and validates everything; `load_config(site_dir)` reads
the file. Unknown keys are errors with a "did you mean" suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fedipress.errors import ConfigError, Diagnostic, SourceLocation, unreadable
from fedipress.yamltext import Positions, YamlSyntaxError, parse_yaml

CONFIG_FILE = "fedipress.yaml"
PERMALINK_TOKENS = frozenset({"slug", "year", "month", "day"})
# Mastodon's USERNAME_RE (app/models/account.rb), lower-case only: one canonical form.
USERNAME_RE = re.compile(r"^[a-z0-9_]+([.-]+[a-z0-9_]+)*$")
ACTOR_TYPES = ("Person", "Service", "Organization", "Application", "Group")
# Matrix identifiers (spec, appendices: identifier grammar): a sigil, a localpart and a
# server name (a host, or an IPv6 literal, with an optional port). Upper case is allowed
# in user ids: older accounts have it (historical user ids).
_MATRIX_SERVER = r"([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?"
MATRIX_USER_RE = re.compile(rf"^@[A-Za-z0-9._=\-/+]+:{_MATRIX_SERVER}$")
# A room id is '!opaque:server', or '!opaque' alone from room version 12 on (MSC4291).
MATRIX_ROOM_RE = re.compile(rf"^(#[^:\s]+:{_MATRIX_SERVER}|![^:\s]+(:{_MATRIX_SERVER})?)$")
POST_TYPES = ("Note", "Article")
# Which verified replies the blog shows at once: from followers, every one, or none until
# approved (docs/federation.md, "Replies and moderation").
MODERATION_POLICIES = ("followers", "all", "manual")


@dataclass(frozen=True)
class Author:
    name: str = ""
    email: str = ""
    url: str = ""


@dataclass(frozen=True)
class MenuItem:
    name: str
    url: str


@dataclass(frozen=True)
class ProfileField:
    name: str
    value: str


@dataclass(frozen=True)
class TopicAccount:
    """An extra account on the site's domain that boosts the posts with any of its `tags`."""

    username: str
    tags: tuple[str, ...]
    display_name: str = ""
    summary: str = ""
    avatar: str = ""  # default: the main account's
    header: str = ""  # default: the main account's
    public_key: str = ""  # default: fedipress.<username>.pub.pem
    also_known_as: tuple[str, ...] = ()
    moved_to: str = ""

    @property
    def public_key_file(self) -> str:
        return self.public_key or f"fedipress.{self.username}.pub.pem"


@dataclass(frozen=True)
class FediverseConfig:
    username: str
    display_name: str = ""
    summary: str = ""
    avatar: str = ""
    header: str = ""
    fields: tuple[ProfileField, ...] = ()
    actor_type: str = "Person"
    post_type: str = "Note"
    sensitive: bool = False
    also_known_as: tuple[str, ...] = ()
    moved_to: str = ""
    manually_approves_followers: bool = False
    moderation: str = "followers"  # one of MODERATION_POLICIES
    # Where a build that cannot reach the inbox's store reads the approved interactions: the
    # inbox's public document (default: `inbox_proxy` + /ap/interactions, when set).
    interactions_from: str = ""
    discoverable: bool = True
    indexable: bool = True
    attribution_domains: tuple[str, ...] = ()
    inbox: str = "/ap/inbox"
    inbox_proxy: str = ""  # origin of the inbox function a static host proxies /ap/inbox to
    public_key: str = "fedipress.pub.pem"
    accounts: tuple[TopicAccount, ...] = ()  # topic accounts, each boosting its tags' posts

    def account(self, name: str) -> TopicAccount:
        """The topic account with this username; KeyError for another name."""
        for account in self.accounts:
            if account.username == name:
                return account
        raise KeyError(name)


@dataclass(frozen=True)
class MatrixConfig:
    """`matrix:`: announce new posts in a room (`homeserver` and `room`, the access token in
    FEDIPRESS_MATRIX_TOKEN), and show the author's `address` on the site and the profile."""

    homeserver: str = ""
    room: str = ""  # a room id '!abc:example.org' or alias '#blog:example.org'
    edits: bool = True  # edit the announcement when the post changes
    removals: bool = True  # redact the announcement when the post is removed
    address: str = ""  # the author's Matrix id, '@mara:example.org'

    @property
    def announces(self) -> bool:
        return bool(self.homeserver and self.room)


@dataclass(frozen=True)
class MatomoConfig:
    url: str  # the Matomo install, ending in '/'
    site_id: int


@dataclass(frozen=True)
class AnalyticsConfig:
    """`analytics:`: none unless configured. Only the author's own Matomo."""

    matomo: MatomoConfig | None = None


@dataclass(frozen=True)
class Config:
    title: str
    base_url: str
    language: str = "en"
    description: str = ""
    author: Author = field(default_factory=Author)
    timezone: str = "UTC"
    permalink: str = "/posts/{slug}/"
    posts_per_page: int = 10
    feed_entries: int = 20
    theme: str = "default"
    markdown_engine: str = "auto"
    menu: tuple[MenuItem, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    fediverse: FediverseConfig | None = None
    matrix: MatrixConfig | None = None
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)
    path: str = CONFIG_FILE
    # Warnings about the file itself (a deprecated key), shown by build and check; not part
    # of the value, so they change no cache key.
    notes: tuple[Diagnostic, ...] = field(default=(), repr=False, compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @functools.cached_property
    def base_path(self) -> str:
        """The path part of base_url without a trailing slash: '' or '/blog'."""
        # Cached: every link in every page asks for it.
        return urlsplit(self.base_url).path.rstrip("/")

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    def url(self, path: str) -> str:
        """A root-relative link for a site path such as '/posts/hello/'."""
        return self.base_path + path

    def absolute_url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def with_base_url(self, base_url: str) -> Config:
        return dataclasses.replace(self, base_url=_normalise_base_url(base_url))

    @classmethod
    def for_test(cls, **overrides: Any) -> Config:
        values: dict[str, Any] = {"title": "Test Blog", "base_url": "https://blog.example/"}
        values.update(overrides)
        return cls(**values)


# --- validation -------------------------------------------------------------------------


class _Reader:
    """Walks a parsed mapping, checking types and collecting unknown keys with positions."""

    def __init__(self, data: Mapping[str, Any], prefix: str, positions: Positions) -> None:
        self.data = data
        self.prefix = prefix
        self.positions = positions
        self.seen: set[str] = set()

    def _dotted(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str, message: str, hint: str = "") -> ConfigError:
        dotted = self._dotted(key)
        if key not in self.data and self.prefix:
            return ConfigError(message, self.positions.key(self.prefix), hint)  # its section
        return ConfigError(message, self.positions.value(dotted), hint)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.seen.add(key)
        value = self.data.get(key, default)
        if value is None:
            return default
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self.error(
                key,
                f"'{self._dotted(key)}' must be a {_TYPE_WORDS.get(names, names)} "
                f"(got {type(value).__name__} {value!r})",
            )
        return value

    def section(self, key: str) -> _Reader | None:
        value = self.get(key, dict, None)
        return None if value is None else _Reader(value, self._dotted(key), self.positions)

    def reject_unknown(self) -> None:
        for key in self.data:
            if key not in self.seen:
                dotted = self._dotted(str(key))
                close = difflib.get_close_matches(str(key), sorted(self.seen), n=1)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else ("known keys: " + ", ".join(sorted(self.seen)))
                )
                raise ConfigError(f"unknown key '{dotted}'", self.positions.key(dotted), hint)


_TYPE_WORDS = {
    "str": "string",
    "int": "whole number",
    "bool": "true or false",
    "list": "list",
    "dict": "mapping",
}


def _normalise_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(value)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"


def _check(ok: bool, reader: _Reader, key: str, message: str, hint: str = "") -> None:
    if not ok:
        raise reader.error(key, message, hint)


def parse_config(text: str, path: str = CONFIG_FILE) -> Config:
    """Validate fedipress.yaml text; raise ConfigError naming the line and key at fault."""
    try:
        data, positions = parse_yaml(text, path)
    except YamlSyntaxError as exc:
        raise ConfigError(str(exc), exc.location, "check the indentation and quoting") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            "the configuration must be a mapping of keys to values",
            SourceLocation(path, 1, 1),
            "start with lines such as 'title: My Blog' and 'base_url: https://blog.example/'",
        )
    top = _Reader(data, "", positions)
    for required in ("title", "base_url"):
        if data.get(required) in (None, ""):
            raise ConfigError(
                f"missing required key '{required}'",
                SourceLocation(path, 1, 1),
                f"add a line such as '{required}: "
                + ("My Blog'" if required == "title" else "https://blog.example/'"),
            )
    title = top.get("title", str, "")
    raw_base = top.get("base_url", str, "")
    try:
        base_url = _normalise_base_url(raw_base)
    except ValueError:
        raise top.error(
            "base_url",
            f"'base_url' must be an absolute http(s) URL (got {raw_base!r})",
            "for example 'https://blog.example/'",
        ) from None
    timezone = top.get("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise top.error(
            "timezone",
            f"'timezone' is not a known time zone (got {timezone!r})",
            "use an IANA name such as 'Europe/Paris' or 'UTC'",
        ) from None
    permalink = top.get("permalink", str, "/posts/{slug}/")
    _check_permalink(permalink, top)
    posts_per_page = top.get("posts_per_page", int, 10)
    _check(posts_per_page >= 1, top, "posts_per_page", "'posts_per_page' must be at least 1")
    feed_entries = top.get("feed_entries", int, 20)
    _check(feed_entries >= 1, top, "feed_entries", "'feed_entries' must be at least 1")
    author = Author()
    if (section := top.section("author")) is not None:
        author = Author(
            name=section.get("name", str, ""),
            email=section.get("email", str, ""),
            url=section.get("url", str, ""),
        )
        section.reject_unknown()
    menu = tuple(_parse_menu(top))
    markdown_engine = top.get("markdown_engine", str, "auto")
    _check(
        markdown_engine in ("auto", "python", "rust"),
        top,
        "markdown_engine",
        f"'markdown_engine' must be auto, python or rust (got {markdown_engine!r})",
        "auto uses the faster rust engine when 'fedipress[fast]' is installed",
    )
    params = top.get("params", dict, {})
    fediverse = None
    notes: list[Diagnostic] = []
    if (section := top.section("fediverse")) is not None:
        fediverse = _parse_fediverse(section, notes)
    matrix = None
    if (section := top.section("matrix")) is not None:
        matrix = _parse_matrix(section)
    analytics = AnalyticsConfig()
    if (section := top.section("analytics")) is not None:
        analytics = _parse_analytics(section)
    config = Config(
        title=title,
        base_url=base_url,
        language=top.get("language", str, "en"),
        description=top.get("description", str, ""),
        author=author,
        timezone=timezone,
        permalink=permalink,
        posts_per_page=posts_per_page,
        feed_entries=feed_entries,
        theme=top.get("theme", str, "default"),
        markdown_engine=markdown_engine,
        menu=menu,
        params=params,
        fediverse=fediverse,
        matrix=matrix,
        analytics=analytics,
        path=path,
        notes=tuple(notes),
    )
    top.reject_unknown()
    return config


def _check_permalink(permalink: str, top: _Reader) -> None:
    tokens = set(re.findall(r"\{([^}]*)\}", permalink))
    unknown = tokens - PERMALINK_TOKENS
    _check(
        not unknown,
        top,
        "permalink",
        f"unknown placeholder '{{{sorted(unknown)[0] if unknown else ''}}}' in 'permalink'",
        "use {slug}, {year}, {month} and {day}",
    )
    _check(
        permalink.startswith("/") and permalink.endswith("/") and "slug" in tokens,
        top,
        "permalink",
        f"'permalink' must start and end with '/' and contain {{slug}} (got {permalink!r})",
        "for example '/posts/{slug}/' or '/{year}/{month}/{slug}/'",
    )


def _parse_menu(top: _Reader) -> list[MenuItem]:
    items = top.get("menu", list, [])
    result = []
    for index, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("url"), str)
        ):
            raise ConfigError(
                "each 'menu' entry needs a 'name' and a 'url'",
                top.positions.value(f"menu.{index}"),
                "for example '- {name: About, url: /about/}'",
            )
        result.append(MenuItem(item["name"], item["url"]))
    return result


def _string_list(reader: _Reader, key: str) -> tuple[str, ...]:
    value = reader.get(key, (list, str), [])
    items = [value] if isinstance(value, str) else value
    if not all(isinstance(item, str) for item in items):
        raise reader.error(key, f"'{reader._dotted(key)}' must be a list of strings")
    return tuple(items)


def _moderation(section: _Reader, notes: list[Diagnostic]) -> str:
    """`moderation`, or the policy the old `approve_replies` meant (true: every reply shown at
    once, false: every reply held), with a warning that names the new key."""
    legacy = section.get("approve_replies", bool, None)
    if "moderation" in section.data:
        policy: str = section.get("moderation", str, "followers")
        _check(
            policy in MODERATION_POLICIES,
            section,
            "moderation",
            f"'fediverse.moderation' must be followers, all or manual (got {policy!r})",
            "followers: replies from followers are shown at once, others wait for approval; "
            "all: every verified reply is shown; manual: every reply waits",
        )
        if legacy is not None:
            raise section.error(
                "approve_replies",
                "'fediverse.approve_replies' and 'fediverse.moderation' are both set",
                "remove 'approve_replies': 'moderation' replaces it",
            )
        return policy
    if legacy is None:
        return "followers"
    policy = "all" if legacy else "manual"
    notes.append(
        Diagnostic(
            "warning",
            "'fediverse.approve_replies' is deprecated",
            section.positions.key("fediverse.approve_replies"),
            f"write 'moderation: {policy}' instead (the same behaviour), or 'moderation: "
            "followers' to show replies from followers at once",
        )
    )
    return policy


def _parse_fediverse(section: _Reader, notes: list[Diagnostic]) -> FediverseConfig:
    username = section.get("username", str, "")
    _check(
        bool(USERNAME_RE.match(username)),
        section,
        "username",
        f"'fediverse.username' must be lower-case letters, digits and '_', with '.' or '-' "
        f"only between them (got {username!r})",
        "for example 'blog' or 'my.blog'; Mastodon rejects other handles",
    )
    fields = []
    for index, item in enumerate(section.get("fields", list, [])):
        if not isinstance(item, dict) or set(item) != {"name", "value"}:
            raise ConfigError(
                "each 'fediverse.fields' entry needs exactly a 'name' and a 'value'",
                section.positions.value(f"fediverse.fields.{index}"),
                "for example '- {name: Website, value: https://blog.example/}'",
            )
        fields.append(ProfileField(str(item["name"]), str(item["value"])))
    _check(len(fields) <= 50, section, "fields", "Mastodon shows at most 50 profile fields")
    actor_type = section.get("actor_type", str, "Person")
    _check(
        actor_type in ACTOR_TYPES,
        section,
        "actor_type",
        f"'fediverse.actor_type' must be one of {', '.join(ACTOR_TYPES)} (got {actor_type!r})",
    )
    post_type = section.get("post_type", str, "Note")
    _check(
        post_type in POST_TYPES,
        section,
        "post_type",
        f"'fediverse.post_type' must be Note or Article (got {post_type!r})",
    )
    url_checks: list[tuple[str, Callable[[str], bool]]] = [
        ("moved_to", lambda v: not v or v.startswith(("https://", "http://"))),
        ("inbox", lambda v: v.startswith(("/", "https://", "http://"))),
        ("inbox_proxy", lambda v: not v or v.startswith(("https://", "http://"))),
        ("interactions_from", lambda v: not v or v.startswith(("https://", "http://"))),
    ]
    values = {
        key: section.get(key, str, default)
        for key, default in (
            ("moved_to", ""),
            ("inbox", "/ap/inbox"),
            ("inbox_proxy", ""),
            ("interactions_from", ""),
        )
    }
    for key, ok in url_checks:
        _check(
            ok(values[key]), section, key, f"'fediverse.{key}' must be a URL (got {values[key]!r})"
        )
    also_known_as = _actor_urls(section, "also_known_as")
    result = FediverseConfig(
        username=username,
        display_name=section.get("display_name", str, ""),
        summary=section.get("summary", str, ""),
        avatar=section.get("avatar", str, ""),
        header=section.get("header", str, ""),
        fields=tuple(fields),
        actor_type=actor_type,
        post_type=post_type,
        sensitive=section.get("sensitive", bool, False),
        also_known_as=also_known_as,
        moved_to=values["moved_to"],
        manually_approves_followers=section.get("manually_approves_followers", bool, False),
        moderation=_moderation(section, notes),
        interactions_from=values["interactions_from"],
        discoverable=section.get("discoverable", bool, True),
        indexable=section.get("indexable", bool, True),
        attribution_domains=_string_list(section, "attribution_domains"),
        inbox=values["inbox"],
        inbox_proxy=values["inbox_proxy"],
        public_key=(public_key := section.get("public_key", str, "fedipress.pub.pem")),
        accounts=_parse_accounts(section, username, public_key),
    )
    section.reject_unknown()
    return result


def _actor_urls(reader: _Reader, key: str) -> tuple[str, ...]:
    urls = _string_list(reader, key)
    for index, alias in enumerate(urls):
        if not alias.startswith(("https://", "http://")):
            raise ConfigError(
                f"'{reader._dotted(key)}' entries must be actor URLs, not handles (got {alias!r})",
                reader.positions.value(f"{reader._dotted(key)}.{index}"),
                "find the actor URL with: curl -H 'Accept: application/activity+json' PROFILE_URL",
            )
    return urls


_ACCOUNT_EXAMPLE = "for example '- {username: rust, tags: [rust]}'"


def _parse_accounts(
    section: _Reader, main_username: str, main_key: str
) -> tuple[TopicAccount, ...]:
    """`fediverse.accounts`: topic accounts, each with a username of its own and the tags
    whose posts it boosts."""
    result: list[TopicAccount] = []
    taken = {main_username: "fediverse.username"}
    key_files = {main_key: "fediverse.public_key"}
    for index, item in enumerate(section.get("accounts", list, [])):
        dotted = f"fediverse.accounts.{index}"
        if not isinstance(item, dict):
            raise ConfigError(
                "each 'fediverse.accounts' entry must be a mapping with a 'username' and 'tags'",
                section.positions.value(dotted),
                _ACCOUNT_EXAMPLE,
            )
        reader = _Reader(item, dotted, section.positions)
        username = reader.get("username", str, "")
        if not username:
            raise ConfigError(
                f"'{dotted}' needs a 'username'", section.positions.value(dotted), _ACCOUNT_EXAMPLE
            )
        _check(
            bool(USERNAME_RE.match(username)),
            reader,
            "username",
            f"'{dotted}.username' must be lower-case letters, digits and '_', with '.' or '-' "
            f"only between them (got {username!r})",
            "Mastodon rejects other handles",
        )
        _check(
            username not in taken,
            reader,
            "username",
            f"the username '{username}' is already used by '{taken.get(username)}'",
            "every account on the site needs a handle of its own",
        )
        taken[username] = f"{dotted}.username"
        tags = _string_list(reader, "tags")
        if not tags or not all(tag.strip() for tag in tags):
            raise ConfigError(
                f"'{dotted}.tags' must list at least one tag, none of them empty",
                section.positions.value(f"{dotted}.tags" if "tags" in item else dotted),
                "the account boosts the posts that have any of these tags",
            )
        moved_to = reader.get("moved_to", str, "")
        _check(
            not moved_to or moved_to.startswith(("https://", "http://")),
            reader,
            "moved_to",
            f"'{dotted}.moved_to' must be a URL (got {moved_to!r})",
        )
        result.append(
            TopicAccount(
                username=username,
                tags=tuple(tag.strip() for tag in tags),
                display_name=reader.get("display_name", str, ""),
                summary=reader.get("summary", str, ""),
                avatar=reader.get("avatar", str, ""),
                header=reader.get("header", str, ""),
                public_key=reader.get("public_key", str, ""),
                also_known_as=_actor_urls(reader, "also_known_as"),
                moved_to=moved_to,
            )
        )
        key_file = result[-1].public_key_file
        _check(
            key_file not in key_files,
            reader,
            "public_key",
            f"'{dotted}' would use the key file '{key_file}' of '{key_files.get(key_file)}'",
            "every account needs a key pair of its own",
        )
        key_files[key_file] = f"{dotted}.public_key"
        reader.reject_unknown()
    return tuple(result)


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _parse_matrix(section: _Reader) -> MatrixConfig:
    homeserver = section.get("homeserver", str, "").strip()
    room = section.get("room", str, "").strip()
    address = section.get("address", str, "").strip()
    result = MatrixConfig(
        homeserver=homeserver.rstrip("/"),
        room=room,
        edits=section.get("edits", bool, True),
        removals=section.get("removals", bool, True),
        address=address,
    )
    section.reject_unknown()
    _check(
        not homeserver or (_http_url(homeserver) and not urlsplit(homeserver).query),
        section,
        "homeserver",
        f"'matrix.homeserver' must be the homeserver's https URL (got {homeserver!r})",
        "for example 'https://matrix.example.org', the address your Matrix app signs in to",
    )
    _check(
        not room or bool(MATRIX_ROOM_RE.match(room)),
        section,
        "room",
        f"'matrix.room' must be a room id or alias (got {room!r})",
        "for example '#blog:example.org' (quote it: '#' starts a YAML comment) or "
        "'!abcdef:example.org', from the room's settings in your Matrix app",
    )
    if bool(homeserver) != bool(room):
        present = "homeserver" if homeserver else "room"
        raise section.error(
            present,
            f"'matrix.{present}' needs 'matrix.{'room' if homeserver else 'homeserver'}' "
            "too: announcing new posts needs both",
            "leave both out to only show 'matrix.address' on the site",
        )
    _check(
        not address or bool(MATRIX_USER_RE.match(address)),
        section,
        "address",
        f"'matrix.address' must be a Matrix user id (got {address!r})",
        "for example '@mara:example.org'",
    )
    return result


def _parse_analytics(section: _Reader) -> AnalyticsConfig:
    matomo = None
    if (inner := section.section("matomo")) is not None:
        url = inner.get("url", str, "").strip()
        site_id = inner.get("site_id", int, 0)
        inner.reject_unknown()
        _check(
            _http_url(url) and not urlsplit(url).query and not urlsplit(url).fragment,
            inner,
            "url",
            f"'analytics.matomo.url' must be your Matomo's http(s) URL (got {url!r})",
            "for example 'https://stats.example.org/', where matomo.js and matomo.php are",
        )
        _check(
            site_id >= 1,
            inner,
            "site_id",
            f"'analytics.matomo.site_id' must be a whole number from 1 (got {site_id!r})"
            if "site_id" in inner.data
            else "'analytics.matomo' needs a 'site_id'",
            "Matomo shows it under Administration, Websites, Manage",
        )
        matomo = MatomoConfig(url=url.rstrip("/") + "/", site_id=site_id)
    section.reject_unknown()
    return AnalyticsConfig(matomo=matomo)


def load_config(site_dir: Path) -> Config:
    """Read and validate `site_dir/fedipress.yaml`."""
    path = site_dir / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no {CONFIG_FILE} in '{site_dir}'",
            None,
            "run 'fedipress new DIR' to create a site, or pass the site folder",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{CONFIG_FILE} is not UTF-8 text", SourceLocation(str(path))) from exc
    except OSError as exc:
        raise unreadable(str(path), exc) from None
    return parse_config(text, str(path))
