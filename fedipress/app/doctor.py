"""`fedipress doctor`: check a deployed site over HTTP(S) the way a remote server sees it, and
say what to fix.

It reads only. Its requests are GETs, an unsigned POST of `{}` to the inbox (refused with 401
before the inbox reads anything) and unsigned calls of the hooks (401 as well): no activity
is sent to anyone and no store is opened. The documents it fetches are judged by the static
checks of `fedipress check` (app/checks.py); what only a live host can get wrong is judged
here: media types, CORS, redirects, the 410 of removed ids, the inbox's routing, its clock,
and whether the key in use verifies. Each finding carries a fix for the host found
(doctor_hosts.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from fedipress.app.checks import DocumentChecker, page_file
from fedipress.app.conversations import interactions_url
from fedipress.app.doctor_hosts import OTHER, Host, Problem, detect_host, fix_for
from fedipress.app.doctor_probe import Answer, Probe
from fedipress.app.keyfiles import read_private_key, read_public_pem
from fedipress.config import Config, FediverseConfig, load_config
from fedipress.documents.media import (
    AP_ACCEPT,
    AP_MEDIA_TYPE,
    JRD_MEDIA_TYPE,
    MASTODON_ACCEPTS,
    NODEINFO_20_MEDIA_TYPE,
    NODEINFO_21_MEDIA_TYPE,
    XRD_MEDIA_TYPE,
    is_activity_media_type,
)
from fedipress.documents.published_ids import RECORD_FILE, parse_record
from fedipress.documents.urls import (
    DELIVER_HOOK_PATH,
    DEPLOY_HOOK_PATH,
    HEALTH_PATH,
    INBOX_PATH,
    INTERACTIONS_PATH,
    Urls,
)
from fedipress.errors import ConfigError, FedipressError
from fedipress.federation.fetch import Fetcher
from fedipress.federation.keyfetch import CachedKeyFetcher
from fedipress.federation.keys import KeyFormatError, SigningKey, load_public_key
from fedipress.federation.signatures import sign_request, verify_request
from fedipress.federation.ssrf import check_destination
from fedipress.hosting import SHORT_CACHE

Status = Literal["pass", "fail", "skip"]
HTML = "text/html"
WEBFINGER_ACCEPT = "application/jrd+json, application/json"  # what Mastodon asks (webfinger.rb)
CLOCK_TOLERANCE = timedelta(seconds=60)  # NTP keeps clocks within a second; HTTP dates round
CLOCK_TITLE = "the inbox's clock agrees with this machine's"
TOPIC_ROUTES = "docs/deploy.md#topic-accounts-on-your-own-server"
INTERACTIONS_TITLE = "the interactions document is served through the site"
BUILD_HOOK_TITLE = "the inbox calls the site's build hook when it must"
_SHORT_MAX_AGE = int(SHORT_CACHE.rsplit("=", 1)[1])
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)
_ALTERNATE = re.compile(
    r'<link rel="alternate" type="application/activity\+json" href="([^"]+)"', re.IGNORECASE
)


@dataclass(frozen=True)
class Check:
    """One finding: `id` is stable for scripts (`actor.headers`), `title` says what was
    checked, `detail` what was seen, `fix` what to change (failures only)."""

    id: str
    title: str
    status: Status
    detail: str = ""
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class DoctorReport:
    url: str
    host: str  # the host found from its answers ("Netlify"), "" when unknown
    checks: tuple[Check, ...]

    def count(self, status: Status) -> int:
        return sum(check.status == status for check in self.checks)

    @property
    def ok(self) -> bool:
        return self.count("fail") == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "host": self.host,
            "ok": self.ok,
            "summary": {s: self.count(s) for s in ("pass", "fail", "skip")},
            "checks": [check.as_json() for check in self.checks],
        }


@dataclass(frozen=True)
class DoctorTarget:
    """What to check: the site's URL, and what the site folder knows when there is one."""

    base_url: str
    config: Config | None = None  # None: learn the account from the site itself
    private_key: RSAPrivateKey | None = None  # the site's own, for the signed GET
    key_note: str = ""  # why there is no private key here
    public_pem: str = ""  # the committed public key
    removed: tuple[str, ...] = ()  # uids of removed posts, newest removal first
    # Each topic account's committed public key, by username ('' when it has none here).
    topic_pems: Mapping[str, str] = field(default_factory=dict)


def site_target(
    site_dir: Path, base_url: str | None = None, environ: Mapping[str, str] | None = None
) -> DoctorTarget:
    """The target for a site folder: its config (at `base_url` if given: a preview or a
    staging copy), committed public key, private key (FEDIPRESS_PRIVATE_KEY or the key file)
    and removed posts (published-ids.json). Raises ConfigError for a site without an account."""
    env = os.environ if environ is None else environ
    config = load_config(site_dir)
    if base_url:
        config = config.with_base_url(base_url)
    if config.fediverse is None:
        raise ConfigError(
            "the site has no 'fediverse' section, so it has no account to check",
            hint="add 'fediverse: {username: blog}' to fedipress.yaml",
        )
    public = read_public_pem(site_dir, config)
    try:
        private, note = read_private_key(site_dir, config, env), ""
    except FedipressError as exc:
        private, note = None, exc.message
    record = site_dir / RECORD_FILE
    removed: list[tuple[str, str]] = []
    if record.is_file():
        entries = parse_record(record.read_text(encoding="utf-8"), str(record))
        removed = [(e.deleted, e.uid) for e in entries.values() if e.deleted]
    uids = tuple(uid for _when, uid in sorted(removed, reverse=True))
    topic_pems = {}
    for topic in config.fediverse.accounts:
        try:
            topic_pems[topic.username] = read_public_pem(site_dir, config, account=topic.username)
        except FedipressError:
            topic_pems[topic.username] = ""
    return DoctorTarget(config.base_url, config, private, note, public, uids, topic_pems)


def url_target(url: str) -> DoctorTarget:
    """The target for a bare URL: the account is read from the site (its actor)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"'{url}' is not an http(s) URL", hint="give the site's address or its folder"
        )
    return DoctorTarget(url if parts.path.endswith("/") else url + "/")


async def diagnose(
    target: DoctorTarget, *, allow_private: bool = False, timeout: float = 10.0
) -> DoctorReport:
    """Check the deployed site; raises FedipressError only when it must not be contacted
    (a private address without `allow_private`)."""
    refusal = await check_destination(target.base_url, allow_private)
    if refusal is not None:
        raise FedipressError(
            f"not checking {target.base_url}: {refusal}",
            hint="to check a server on this machine or network, pass --allow-private "
            "(or set FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1)",
        )
    async with Probe(target.base_url, allow_private, timeout) as probe:
        doctor = _Doctor(target, probe, allow_private)
        await doctor.run()
    return DoctorReport(target.base_url, doctor.host.name, tuple(doctor.checks))


@dataclass
class _Doctor:
    target: DoctorTarget
    probe: Probe
    allow_private: bool
    host: Host = OTHER
    checks: list[Check] = field(default_factory=list)
    config: Config | None = None
    inbox_answer: Answer | None = None
    health: dict[str, Any] | None = None  # what /ap/health said, when it answered 200

    # --- findings ---------------------------------------------------------------------------

    def passed(self, id: str, title: str, detail: str = "") -> None:
        self.checks.append(Check(id, title, "pass", detail))

    def failed(self, id: str, title: str, detail: str, fix: str) -> None:
        self.checks.append(Check(id, title, "fail", detail, fix))

    def skipped(self, id: str, title: str, why: str) -> None:
        self.checks.append(Check(id, title, "skip", why))

    @property
    def urls(self) -> Urls:
        assert self.config is not None
        return Urls(self.config)

    # --- the run ----------------------------------------------------------------------------

    async def run(self) -> None:
        home = await self.probe.get(self.target.base_url, HTML)
        self.host = detect_host(home.headers)
        if not self._home(home):
            return
        self.config = self.target.config or await self._discover(home)
        if self.config is None:
            return
        await self._webfinger()
        actor = await self._actor()
        if actor is None:
            return
        await self._collections(actor)
        await self._icon(actor)
        await self._post(actor)
        await self._removed()
        await self._nodeinfo()
        await self._host_meta()
        await self._inbox(actor)
        await self._signed_get(actor)
        for topic in self.config.fediverse.accounts if self.config.fediverse else ():
            await self._topic_account(topic.username)

    def _home(self, home: Answer) -> bool:
        title = "the home page answers"
        if not home.answered:
            self.failed(
                "site.home",
                title,
                f"{home.url}: {home.error}",
                "check the address, DNS and TLS certificate of the site",
            )
            return False
        if home.status != 200:
            fix = (
                "set `base_url` to the address the site really has"
                if home.redirect
                else "deploy the built `_site` folder"
            )
            self.failed("site.home", title, f"{home.url}: {home.summary()}", fix)
            return False
        self.passed("site.home", title, f"{home.url}: 200" + self._host_note())
        return True

    def _host_note(self) -> str:
        return f", served by {self.host.name}" if self.host.name else ""

    async def _discover(self, home: Answer) -> Config | None:
        """The account from the site itself: the home page's `rel=alternate` link to the
        actor (or the usual /ap/actor), and its `preferredUsername`."""
        base = self.target.base_url
        links = _ALTERNATE.findall(home.body.decode("utf-8", "replace"))
        actor_url = links[0] if links else base + "ap/actor"
        answer = await self.probe.get(actor_url, AP_ACCEPT)
        name = answer.json_object().get("preferredUsername")
        title = "the account is found"
        if answer.status != 200 or not isinstance(name, str) or not name:
            self.failed(
                "site.account",
                title,
                f"no actor with a preferredUsername at {actor_url}: {answer.summary()}",
                "check that the site has a `fediverse` section and was built and deployed "
                "with it, or give the site folder instead of the URL",
            )
            return None
        config = Config(title="", base_url=base, fediverse=FediverseConfig(username=name))
        self.passed("site.account", title, f"@{Urls(config).handle()} (from {actor_url})")
        return config

    # --- documents ---------------------------------------------------------------------------

    async def _document(
        self,
        id: str,
        label: str,
        url: str,
        accept: str = MASTODON_ACCEPTS[0],
        media: str = "ap",
        cors: bool = True,
        short_cache: bool = False,
        status: int = 200,
    ) -> Answer | None:
        """GET a document that must answer `status` directly (no redirect), with its media
        type (`ap`: either AP type; else exactly `media`), CORS, and at most 5 minutes of
        caching when `short_cache`. One finding; returns the answer when its body is usable."""
        answer = await self.probe.get(url, accept)
        title = f"{label} is served right"
        if answer.status != status or answer.error:
            detail = f"{url}: {answer.summary()}"
            if answer.status == status:
                detail = f"{url}: {answer.error}"
            self.failed(id, title, detail, self._fix(answer, status))
            return None
        problems = _header_problems(answer, media, cors, short_cache)
        if problems:
            self.failed(id, title, "; ".join(problems), fix_for(self.host, "headers"))
        else:
            self.passed(id, title, f"{answer.status}, {answer.content_type}")
        return answer

    def _fix(self, answer: Answer, expected: int) -> str:
        """The fix for a document that did not answer `expected`."""
        if not answer.answered:
            return "check that the site is deployed and reachable from here"
        if answer.status == expected:  # read, but not usable: too large or badly encoded
            return "keep documents under 1 MB, in gzip, deflate or no encoding"
        if answer.redirect:
            return fix_for(self.host, "redirect")
        if expected == 410:
            return fix_for(self.host, "tombstone")
        if answer.status == 404:
            return fix_for(self.host, "missing")
        return f"the host answered {answer.status}: its log says why"

    def _static(
        self, id: str, label: str, url: str, answer: Answer, page: Answer | None = None
    ) -> None:
        """The checks of `fedipress check`, on what the host served (and a post's page)."""
        assert self.config is not None
        checker = DocumentChecker(self.config, (), ())
        try:
            path = self.urls.output_path(url)
        except ValueError:
            path = urlsplit(url).path.lstrip("/")
        if id.startswith("tombstone"):
            path = "ap/tombstones/" + path.rsplit("/", 1)[-1]
        checker.visit(path, answer.body, served=False)
        if page is not None:
            checker.visit(page_file(page.url), page.body, served=False)
        problems = checker.finish()
        title = f"{label} passes the checks of `fedipress check`"
        if not problems:
            self.passed(f"{id}.content", title)
            return
        for problem in problems:
            self.failed(
                f"{id}.content",
                title,
                problem.message,
                problem.hint or "rebuild with this fedipress and deploy the new `_site`",
            )

    async def _webfinger(self) -> None:
        urls = self.urls
        handle = urls.handle()
        # Every name the site gives its account (the JRD's aliases): each must lead back to it.
        names = (
            ("webfinger", f"WebFinger for acct:{handle}", f"acct:{handle}"),
            ("webfinger.actor", "WebFinger for the actor's URL", urls.actor()),
            ("webfinger.home", "WebFinger for the blog's URL", urls.home()),
        )
        for id, label, resource in names:
            url = f"{urls.webfinger()}?resource={quote(resource, safe='')}"
            answer = await self._document(
                id, label, url, WEBFINGER_ACCEPT, media=JRD_MEDIA_TYPE, short_cache=True
            )
            if answer is None:
                continue
            self._static(id, label, urls.webfinger(), answer)
            if resource.startswith("acct:"):
                self._aliases(answer)
        await self._webfinger_other(handle)

    def _aliases(self, answer: Answer) -> None:
        aliases = answer.json_object().get("aliases")
        title = "WebFinger aliases name the actor and the blog"
        expected = {self.urls.actor(), self.urls.home()}
        found = set(aliases) if isinstance(aliases, list) else set()
        if self.urls.actor() in found and found <= expected:
            self.passed("webfinger.aliases", title)
        else:
            self.failed(
                "webfinger.aliases",
                title,
                f"aliases {sorted(map(str, found))}, expected {sorted(expected)}",
                "rebuild and deploy: the built WebFinger file lists both",
            )

    async def _webfinger_other(self, handle: str) -> None:
        """A resource that is not this blog: a static file answers every resource with the
        blog's JRD (harmless, FEDERATION.md §1.5); a server that sees the query says 404."""
        user, _, host = handle.partition("@")
        other = f"acct:not-{user}@{host}"
        url = f"{self.urls.webfinger()}?resource={quote(other, safe='')}"
        answer = await self.probe.get(url, WEBFINGER_ACCEPT)
        title = "WebFinger for another account answers 404, or the blog's own JRD"
        subject = answer.json_object().get("subject")
        if answer.status == 404 or (answer.status == 200 and subject == f"acct:{handle}"):
            how = "404" if answer.status == 404 else "the blog's JRD (a static file)"
            self.passed("webfinger.other", title, f"{other}: {how}")
        else:
            self.failed(
                "webfinger.other",
                title,
                f"{other}: {answer.summary()}, subject {subject!r}",
                "serve the built `/.well-known/webfinger` file for every query, or let the "
                "inbox answer it",
            )

    async def _actor(self) -> dict[str, Any] | None:
        url = self.urls.actor()
        answer: Answer | None = None
        asks = (
            ("actor", "the actor", MASTODON_ACCEPTS[0]),
            ("actor.search", "the actor for Mastodon's search", MASTODON_ACCEPTS[1]),
        )
        for id, label, accept in asks:
            # Mastodon asks with both headers (FEDERATION.md §2.1, §5.8): a host that varies
            # on Accept must give the document to each.
            got = await self._document(id, label, url, accept, short_cache=True)
            answer = answer or got
        if answer is None:
            return None
        self._static("actor", "the actor", url, answer)
        actor = answer.json_object()
        title = "the actor's url is the blog"
        if actor.get("url") == self.urls.home():
            self.passed("actor.url", title, self.urls.home())
        else:
            self.failed(
                "actor.url",
                title,
                f"url {actor.get('url')!r}, not {self.urls.home()}",
                "check `base_url` in fedipress.yaml, rebuild and deploy",
            )
        self._published_key(actor)
        return actor

    def _published_key(self, actor: Mapping[str, Any], account: str = "") -> None:
        """The key the actor publishes is the committed public key of its account ('' the
        main one)."""
        if account:
            id, title = f"topic.{account}.key", f"@{account}'s actor publishes its public key"
            ours_pem = self.target.topic_pems.get(account, "")
            why = "its public key file is not in the site folder"
        else:
            id, title = "actor.key", "the actor publishes the site's public key"
            ours_pem = self.target.public_pem
            why = "no site folder given: nothing to compare with"
        if not ours_pem:
            self.skipped(id, title, why)
            return
        key = actor.get("publicKey")
        published_pem = key.get("publicKeyPem") if isinstance(key, dict) else None
        try:
            published = load_public_key(str(published_pem))
            ours = load_public_key(ours_pem)
        except KeyFormatError as exc:
            self.failed(id, title, str(exc), "rebuild and deploy")
            return
        if published.public_numbers() == ours.public_numbers():
            self.passed(id, title)
        else:
            self.failed(
                id,
                title,
                "the deployed actor has another key than the site's public key file",
                "deploy the current build; if the key was replaced on purpose, followers' "
                "servers treat the blog as a new account (FEDERATION.md §4.6)",
            )

    # --- topic accounts (fediverse.accounts) ----------------------------------------------------

    async def _topic_account(self, username: str) -> None:
        """A topic account as a server finds it: WebFinger for its handle (which a static
        file cannot answer: it names the main account for every handle), its actor with
        its key, and its followers collection."""
        urls = self.urls.for_account(username)
        prefix = f"topic.{username}"
        handle = urls.handle()
        label = f"WebFinger for acct:{handle}"
        url = f"{urls.webfinger()}?resource={quote('acct:' + handle, safe='')}"
        answer = await self._document(
            f"{prefix}.webfinger", label, url, WEBFINGER_ACCEPT, JRD_MEDIA_TYPE, short_cache=True
        )
        if answer is not None:
            jrd = answer.json_object()
            links = jrd.get("links")
            selves = [
                link.get("href")
                for link in (links if isinstance(links, list) else [])
                if isinstance(link, dict) and link.get("rel") == "self"
            ]
            title = f"WebFinger for acct:{handle} names @{username}'s actor"
            if jrd.get("subject") == f"acct:{handle}" and urls.actor() in selves:
                self.passed(f"{prefix}.webfinger.subject", title, urls.actor())
            else:
                self.failed(
                    f"{prefix}.webfinger.subject",
                    title,
                    f"subject {jrd.get('subject')!r}, self {selves}",
                    "a static WebFinger file answers every handle with the main account: "
                    "route `/.well-known/webfinger` to the inbox, which answers for each "
                    f"account ({TOPIC_ROUTES})",
                )
        actor_url = urls.actor()
        label = f"@{username}'s actor"
        answer = await self._document(f"{prefix}.actor", label, actor_url, short_cache=True)
        if answer is not None:
            self._static(f"{prefix}.actor", label, actor_url, answer)
            self._published_key(answer.json_object(), username)
        label = f"@{username}'s followers collection"
        answer = await self._document(f"{prefix}.followers", label, urls.followers())
        if answer is not None:
            self._static(f"{prefix}.followers", label, urls.followers(), answer)

    async def _collections(self, actor: Mapping[str, Any]) -> None:
        for name in ("outbox", "followers", "following", "featured"):
            url = actor.get(name)
            if not isinstance(url, str):
                self.failed(name, f"the actor names its {name}", "missing", "rebuild and deploy")
                continue
            label = "the outbox" if name == "outbox" else f"the {name} collection"
            answer = await self._document(name, label, url)
            if answer is not None:
                self._static(name, label, url, answer)

    async def _icon(self, actor: Mapping[str, Any]) -> None:
        icon = actor.get("icon")
        url = icon.get("url") if isinstance(icon, dict) else icon
        title = "the avatar (icon) is reachable"
        if not isinstance(url, str):
            self.skipped("actor.icon", title, "the actor has no icon")
            return
        answer = await self.probe.get(url, "image/*")
        if answer.status == 200 and answer.media_type.startswith("image/"):
            self.passed("actor.icon", title, f"{_path(url)}: {answer.media_type}")
        else:
            self.failed(
                "actor.icon",
                title,
                f"{url}: {answer.summary()}",
                "deploy the image `fediverse.avatar` names; Mastodon takes JPEG, PNG, GIF or "
                "WebP up to 8 MB",
            )

    async def _post(self, actor: Mapping[str, Any]) -> None:
        object_id = await self._recent_post(actor)
        title = "a recent post"
        if object_id is None:
            self.skipped("post", title, "the outbox and featured collections list no post")
            return
        label = f"the post {_path(object_id)}"
        answer = await self._document("post", label, object_id)
        if answer is None:
            return
        page_url = answer.json_object().get("url")
        page = None
        if isinstance(page_url, str):
            page = await self.probe.get(page_url, HTML)
            page_title = "the post's page answers with HTML"
            if page.status == 200 and page.media_type == HTML:
                self.passed("post.page", page_title, _path(page_url))
            else:
                self.failed(
                    "post.page",
                    page_title,
                    f"{page_url}: {page.summary()}",
                    fix_for(self.host, "redirect" if page.redirect else "missing"),
                )
                page = None
        self._static("post", label, object_id, answer, page)

    async def _recent_post(self, actor: Mapping[str, Any]) -> str | None:
        """The object id of the newest post in the outbox (else the first featured one)."""
        outbox = await self.probe.get(str(actor.get("outbox")), AP_ACCEPT)
        first = outbox.json_object().get("first")
        if isinstance(first, dict):
            first = first.get("id")
        if isinstance(first, str):
            page = await self.probe.get(first, AP_ACCEPT)
            for item in _items(page.json_object()):
                found = item.get("object") if isinstance(item, dict) else None
                found = found.get("id") if isinstance(found, dict) else found
                if isinstance(found, str):
                    return found
        featured = await self.probe.get(str(actor.get("featured")), AP_ACCEPT)
        for item in _items(featured.json_object()):
            found = item.get("id") if isinstance(item, dict) else item
            if isinstance(found, str):
                return found
        return None

    async def _removed(self) -> None:
        title = "a removed post answers 410 with its Tombstone"
        if not self.target.removed:
            why = (
                "no removed post in published-ids.json"
                if self.target.config
                else "give the site folder to check a removed post's id"
            )
            self.skipped("tombstone", title, why)
            return
        url = self.urls.post(self.target.removed[0])
        label = f"the removed post {_path(url)}"
        answer = await self._document("tombstone", label, url, status=410)
        if answer is not None:
            self._static("tombstone", label, url, answer)

    async def _nodeinfo(self) -> None:
        urls = self.urls
        answer = await self._document(
            "nodeinfo",
            "NodeInfo discovery",
            urls.nodeinfo_discovery(),
            "application/json",
            "application/json",
        )
        if answer is None:
            return
        links = answer.json_object().get("links")
        hrefs = [
            link["href"]
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, dict) and isinstance(link.get("href"), str)
        ]
        if not hrefs:
            self.failed(
                "nodeinfo.links",
                "NodeInfo discovery links a schema",
                "no links",
                "rebuild and deploy",
            )
        for href in hrefs:
            media = NODEINFO_20_MEDIA_TYPE if href.endswith("/2.0") else NODEINFO_21_MEDIA_TYPE
            version = href.rsplit("/", 1)[-1]
            id, label = f"nodeinfo.{version}", f"NodeInfo {version}"
            info = await self._document(id, label, href, "application/json", media)
            if info is not None:
                self._static(id, label, href, info)

    async def _host_meta(self) -> None:
        url = self.urls.host_meta()
        answer = await self._document("host-meta", "host-meta", url, XRD_MEDIA_TYPE, XRD_MEDIA_TYPE)
        if answer is None:
            return
        title = "host-meta points at WebFinger"
        if self.urls.webfinger() in answer.body.decode("utf-8", "replace"):
            self.passed("host-meta.template", title)
        else:
            self.failed(
                "host-meta.template",
                title,
                f"no lrdd template with {self.urls.webfinger()}",
                "rebuild and deploy",
            )

    # --- the inbox ---------------------------------------------------------------------------

    async def _inbox(self, actor: Mapping[str, Any]) -> None:
        inbox = actor.get("inbox")
        if not isinstance(inbox, str):
            return  # the static checks of the actor already said so
        reachable = await self._inbox_post("inbox", inbox)
        endpoints = actor.get("endpoints")
        shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
        if isinstance(shared, str) and shared != inbox:
            await self._inbox_post("shared-inbox", shared)
        elif isinstance(shared, str):
            self.passed("shared-inbox", "the shared inbox is reachable", "the same URL")
        base = _inbox_base(inbox)
        await self._health(base + HEALTH_PATH)
        if not reachable:
            why = "the inbox is not reachable"
            self.skipped("clock", CLOCK_TITLE, why)
            self.skipped("deploy-hook", "the deploy hook is routed to the inbox", why)
            self.skipped("deliver-hook", "the delivery hook is routed to the inbox", why)
            self.skipped("interactions", INTERACTIONS_TITLE, why)
            self.skipped("build-hook", BUILD_HOOK_TITLE, why)
            return
        self._clock()
        await self._hook(
            "deploy-hook",
            "the deploy hook",
            base + DEPLOY_HOOK_PATH,
            "POST",
            "FEDIPRESS_DEPLOY_SECRET",
        )
        await self._hook(
            "deliver-hook", "the delivery hook", base + DELIVER_HOOK_PATH, "GET", "CRON_SECRET"
        )
        await self._interactions()
        self._build_hook()

    async def _inbox_post(self, id: str, url: str) -> bool:
        """An unsigned POST, as a server with a broken signer would send: the inbox's own
        answer is a JSON 401; a static host's is a 404 or 405 page."""
        answer = await self.probe.request("POST", url, {"Content-Type": AP_MEDIA_TYPE}, b"{}")
        if id == "inbox":
            self.inbox_answer = answer
        title = f"{'the shared inbox' if id != 'inbox' else 'the inbox'} answers as the inbox"
        error = answer.json_object().get("error")
        if answer.status == 401 and isinstance(error, str):
            self.passed(id, title, f"{_path(url)}: 401 for an unsigned POST")
            return True
        if answer.status == 404 and error == "not found":
            problem: Problem = "inbox_path"
        elif answer.redirect:
            problem = "redirect"
        elif 500 <= answer.status < 600 and isinstance(error, str):
            self.failed(
                id,
                title,
                f"{url}: {answer.summary()}: {error}",
                "the inbox failed: see its log and `/ap/health`",
            )
            return False
        else:
            problem = "inbox_route"
        detail = f"{url}: {answer.summary()}"
        if problem == "inbox_route" and answer.answered:
            detail += ", from the static host, not the inbox"
        self.failed(id, title, detail, fix_for(self.host, problem))
        return False

    async def _health(self, url: str) -> None:
        answer = await self.probe.get(url, "application/json")
        title = "the inbox's health check answers"
        body = answer.json_object()
        queue = body.get("queue")
        if answer.status == 200 and body.get("status") == "ok":
            self.health = body
            counts = queue if isinstance(queue, dict) else {}
            detail = (
                f"store ok; {counts.get('pending', '?')} pending, {counts.get('dead', '?')} dead"
            )
            self.passed("health", title, detail)
        elif answer.status == 503:
            self.failed(
                "health",
                title,
                f"{url}: 503, the store is unreachable",
                "check FEDIPRESS_DATABASE_URL and the database; the inbox's log names the cause",
            )
        else:
            problem: Problem = "inbox_path" if body.get("error") == "not found" else "inbox_route"
            self.failed("health", title, f"{url}: {answer.summary()}", fix_for(self.host, problem))

    async def _interactions(self) -> None:
        """The inbox's public document of approved interactions, at the site's own path, as
        the theme's script and a build elsewhere read it: through the host's proxy rules,
        200 JSON of the right shape, open to every origin (CORS)."""
        title = INTERACTIONS_TITLE
        url = self.urls.interactions()
        answer = await self.probe.get(url, "application/json")
        body = answer.json_object()
        if answer.status == 404 and body.get("error") == "not found":
            # The inbox's own 404, while its other paths work: it predates the document.
            detail = f"{url}: 404 from the inbox, which does not know {INTERACTIONS_PATH}"
            fix = "update fedipress where the inbox runs (the document came with conversations)"
            self.failed("interactions", title, detail, fix)
            return
        if answer.status != 200 or answer.error:
            problem: Problem = "redirect" if answer.redirect else "inbox_route"
            detail = f"{url}: {answer.summary()}"
            if answer.answered and not answer.redirect:
                detail += ", from the static host, not the inbox"
            self.failed("interactions", title, detail, fix_for(self.host, problem))
            return
        problems = _header_problems(answer, "application/json", True, False)
        posts = body.get("posts")
        posts = posts if isinstance(posts, dict) else None
        if posts is None or not isinstance(body.get("actors"), dict) or "version" not in body:
            problems.append("not the interactions document (no `version`, `posts` and `actors`)")
        if problems or posts is None:
            fix = fix_for(self.host, "headers") if body else "check the proxy rule of the path"
            self.failed("interactions", title, "; ".join(problems), fix)
            return
        replies = [r for p in posts.values() if isinstance(p, dict) for r in p.get("replies", [])]
        self.passed("interactions", title, f"{len(posts)} posts, {len(replies)} replies shown")

    def _build_hook(self) -> None:
        """Whether the inbox calls the site's build hook, as /ap/health tells (the hook's URL
        is a secret: only "on", "failing" or "off" can be seen). Off is right where the
        build reads the store itself; a site built from the inbox's public document (on
        Netlify, Cloudflare Pages, Vercel) needs it, or new replies wait for another build."""
        title = BUILD_HOOK_TITLE
        state = self.health.get("build_hook") if self.health is not None else None
        if state is None:
            why = "the health check did not answer" if self.health is None else "not reported"
            self.skipped("build-hook", title, f"{why}: an older inbox says nothing of it")
            return
        if state == "on":
            self.passed("build-hook", title, "on (FEDIPRESS_BUILD_HOOK_URL is set)")
        elif state == "failing":
            self.failed(
                "build-hook",
                title,
                "on, but its last call failed: the site did not rebuild",
                "check that FEDIPRESS_BUILD_HOOK_URL is the build hook URL the host gives "
                "(Netlify: Site settings > Build hooks); the inbox's log has the answer",
            )
        elif self.config is not None and self.target.config and interactions_url(self.config):
            self.failed(
                "build-hook",
                title,
                "off, and the site is built from the inbox's public document: new replies, "
                "likes and boosts show only when something else rebuilds it",
                "set FEDIPRESS_BUILD_HOOK_URL where the inbox runs to the host's build hook "
                "URL (docs/federation.md#how-interactions-reach-the-site)",
            )
        else:
            self.passed("build-hook", title, "off (FEDIPRESS_BUILD_HOOK_URL is not set)")

    def _clock(self) -> None:
        title = CLOCK_TITLE
        answer = self.inbox_answer
        told = answer.server_time() if answer is not None else None
        if answer is None or told is None or answer.received_at is None:
            self.skipped("clock", title, "the inbox's answer had no Date")
            return
        skew = told - answer.received_at
        if abs(skew) <= CLOCK_TOLERANCE:
            self.passed("clock", title, f"within {CLOCK_TOLERANCE.seconds} s")
            return
        self.failed(
            "clock",
            title,
            f"its Date is {_duration(skew)} {'ahead of' if skew > timedelta(0) else 'behind'} "
            "this machine's: deploy hooks fail beyond 5 minutes, and servers refuse its "
            "signatures beyond an hour (FEDERATION.md §4.2)",
            "synchronise the clock with NTP (`timedatectl set-ntp true`) on whichever machine "
            "is wrong; `date -u` on both shows which",
        )

    async def _hook(self, id: str, name: str, url: str, method: str, variable: str) -> None:
        """An unsigned call: the inbox answers 401 (on) or its JSON 404 (off)."""
        headers = {"Content-Type": "application/json"} if method == "POST" else {}
        answer = await self.probe.request(method, url, headers, b"" if method == "POST" else None)
        title = f"{name} is routed to the inbox"
        error = answer.json_object().get("error")
        if answer.status == 401 and isinstance(error, str):
            self.passed(id, title, "on: 401 without a signature")
        elif answer.status == 404 and isinstance(error, str) and variable in error:
            self.passed(id, title, f"off ({variable} is not set)")
        else:
            problem: Problem = "inbox_path" if error == "not found" else "inbox_route"
            self.failed(id, title, f"{url}: {answer.summary()}", fix_for(self.host, problem))

    async def _signed_get(self, actor: Mapping[str, Any]) -> None:
        """A signed GET of the actor with the site's key, as the inbox signs its fetches, and
        that signature verified as a remote server would: through the published key."""
        title = "a GET signed with the site's key is served and verifies"
        key = self.target.private_key
        if key is None:
            why = self.target.key_note or "no site folder given: no key to sign with"
            self.skipped("signed-get", title, why)
            return
        published = actor.get("publicKey")
        key_id = published.get("id") if isinstance(published, dict) else None
        key_id = key_id if isinstance(key_id, str) else self.urls.key_id()
        url = self.urls.actor()
        base = self.target.base_url
        signer = SigningKey(key_id, key)
        async with (
            Fetcher(signer=signer, site_url=base, allow_private=self.allow_private) as fetcher,
            Fetcher(signer=None, site_url=base, allow_private=self.allow_private) as keys,
        ):
            fetched = await fetcher.fetch_json(url)
            if not fetched.ok:
                refused = fetched.status in (401, 403, 406, 429)
                problem: Problem = "headers" if fetched.failure == "wrong_media_type" else "missing"
                fix = (
                    "a firewall or bot protection in front of `/ap/` refuses signed requests: "
                    "let them through (FEDERATION.md §6.1)"
                    if refused
                    else fix_for(self.host, problem)
                )
                self.failed("signed-get", title, f"{url}: {fetched.failure}: {fetched.reason}", fix)
                return
            now = datetime.now(UTC)
            headers = sign_request("GET", url, {"Accept": AP_ACCEPT}, None, key_id, key, now)
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            verified = await verify_request(
                "GET",
                target,
                headers,
                b"",
                public_host=parts.netloc,
                public_scheme=parts.scheme,
                fetch_key=CachedKeyFetcher(keys, timeout=self.probe.timeout),
                now=now,
            )
        if verified.ok:
            self.passed("signed-get", title, f"signed as {key_id}")
        else:
            self.failed(
                "signed-get",
                title,
                f"a signature by {key_id} does not verify: {verified.reason}",
                "the inbox's FEDIPRESS_PRIVATE_KEY must be the private half of the key the "
                "actor publishes",
            )


def _header_problems(answer: Answer, media: str, cors: bool, short_cache: bool) -> list[str]:
    problems = []
    if media == "ap":
        if not is_activity_media_type(answer.content_type):
            problems.append(
                f"served as {answer.content_type or 'no type'!r}, not application/activity+json "
                "(Mastodon ignores it, FEDERATION.md §2.1)"
            )
    elif _normal(answer.content_type) != _normal(media) and (
        ";" in media or answer.media_type != media
    ):
        problems.append(f"served as {answer.content_type or 'no type'!r}, not {media}")
    if cors and answer.header("access-control-allow-origin") != "*":
        problems.append("no `Access-Control-Allow-Origin: *`")
    if short_cache:
        ages = [int(n) for n in _MAX_AGE.findall(answer.header("cache-control"))]
        if ages and max(ages) > _SHORT_MAX_AGE:
            problems.append(
                f"cached for {max(ages)} s: a new key or alias takes that long to spread "
                f"(at most {_SHORT_MAX_AGE} s, FEDERATION.md §10 item 10)"
            )
    return problems


def _normal(content_type: str) -> str:
    return re.sub(r"\s+", "", content_type).lower()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _items(collection: Mapping[str, Any]) -> list[Any]:
    items = collection.get("orderedItems", collection.get("items"))
    return items if isinstance(items, list) else []


def _inbox_base(inbox: str) -> str:
    """Where the inbox function's other paths live: the inbox URL without `/ap/inbox`."""
    parts = urlsplit(inbox)
    prefix = parts.path[: -len(INBOX_PATH)] if parts.path.endswith(INBOX_PATH) else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}"


def _duration(delta: timedelta) -> str:
    seconds = round(abs(delta).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
