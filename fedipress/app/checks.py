"""Check built federation documents against what real servers require (FEDERATION.md §12,
static part). Pure: takes files as bytes, returns diagnostics; `fedipress check` and the
tests run it on every document a build produces, and `fedipress doctor` on the documents a
deployed site serves (with `served=False`: it judges the host's real headers itself)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fedipress.config import USERNAME_RE, Config
from fedipress.documents.media import AP_MEDIA_TYPE, AS_CONTEXT, JRD_MEDIA_TYPE
from fedipress.documents.urls import Urls
from fedipress.errors import Diagnostic, SourceLocation
from fedipress.federation.keys import load_public_key
from fedipress.hosting import (
    HeaderRule,
    RedirectRule,
    headers_for,
    match_pattern,
)

ACTOR_TYPES = {"Application", "Group", "Organization", "Person", "Service"}
MAX_BYTES = 1_000_000  # Mastodon refuses larger documents (request.rb body_with_limit)
_ALTERNATE = re.compile(r'<link rel="alternate" type="application/activity\+json" href="([^"]+)"')
_SOFTWARE = re.compile(r"^[a-z0-9-]+$")


@dataclass
class DocumentChecker:
    """Feed it every built file with `visit`; read `problems` at the end."""

    config: Config
    header_rules: Sequence[HeaderRule]
    redirect_rules: Sequence[RedirectRule]
    problems: list[Diagnostic] = field(default_factory=list)
    _object_pages: dict[str, str] = field(default_factory=dict)  # html path -> object id
    _alternates: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.urls = Urls(self.config)

    def fail(self, path: str, message: str, hint: str = "") -> None:
        self.problems.append(Diagnostic("error", message, SourceLocation(f"_site/{path}"), hint))

    def visit(self, path: str, data: bytes, served: bool = True) -> None:
        """Check one file, `path` relative to the site root (`ap/actor`). `served=False`
        skips the host rules (what the headers and redirects would be): for a document
        fetched from a live host, whose real answer is checked instead."""
        if path.endswith(".html"):
            self._alternates[path] = _ALTERNATE.findall(data.decode("utf-8", "replace"))
            return
        kind = _kind(path)
        if kind is None:
            return
        if len(data) >= MAX_BYTES:
            self.fail(path, f"{len(data)} bytes: Mastodon refuses documents over 1 MB")
        try:
            document = json.loads(data)
        except ValueError:
            self.fail(path, "not valid JSON")
            return
        if served:
            self._check_served_as(path, kind)
        if kind == "ap":
            self._check_ap(path, document)
        elif kind == "webfinger":
            self._check_webfinger(path, document)
        elif kind == "nodeinfo":
            name = document.get("software", {}).get("name", "")
            if not _SOFTWARE.match(str(name)):
                self.fail(path, f"NodeInfo software.name {name!r} must match ^[a-z0-9-]+$")

    def _check_served_as(self, path: str, kind: str) -> None:
        url_path = "/" + path
        types = {
            v for k, v in headers_for(url_path, self.header_rules) if k.lower() == "content-type"
        }
        expected = {"ap": AP_MEDIA_TYPE, "webfinger": JRD_MEDIA_TYPE}.get(kind)
        if expected and types != {expected}:
            self.fail(
                path,
                f"served as {sorted(types) or 'no type'}, not {expected}",
                "Mastodon ignores ActivityPub documents of other types (FEDERATION.md §2.1)",
            )
        for rule in self.redirect_rules:
            if rule.status in (301, 302, 303, 307, 308) and match_pattern(rule.source, url_path):
                self.fail(
                    path,
                    f"a redirect rule ({rule.source}) applies to an id",
                    "ids must answer 200 directly: Mastodon compares the id with the URL",
                )

    def _check_ap(self, path: str, doc: dict[str, object]) -> None:
        context = doc.get("@context")
        contexts = context if isinstance(context, list) else [context]
        if AS_CONTEXT not in contexts:
            self.fail(path, "@context lacks the ActivityStreams URL")
        doc_id = str(doc.get("id", ""))
        url = self.urls.absolute("/" + path)
        if path.startswith("ap/tombstones/"):
            expected = self.urls.absolute("/ap/posts/" + path.split("/", 2)[2])
            if doc_id != expected or doc.get("type") != "Tombstone":
                self.fail(path, f"a Tombstone must keep the old id {expected}")
            return
        if doc_id != url:
            self.fail(
                path,
                f"id {doc_id!r} differs from the URL it is served at ({url})",
                "Mastodon drops a document whose id is not its URL (FEDERATION.md §2.1)",
            )
        actor = self.urls.actor()
        if self.urls.account_of(doc_id) is not None:  # the main or a topic account
            self._check_actor(path, doc)
        elif path.startswith("ap/posts/"):
            self._object_pages[str(doc.get("url", ""))] = doc_id
            if doc.get("attributedTo") != actor:
                self.fail(path, "attributedTo is not the actor")
            if urlsplit(doc_id).netloc != urlsplit(actor).netloc:
                self.fail(path, "the object is not on the actor's host")

    def _check_actor(self, path: str, doc: dict[str, object]) -> None:
        if doc.get("type") not in ACTOR_TYPES:
            self.fail(path, f"actor type {doc.get('type')!r} is not one Mastodon accepts")
        if not USERNAME_RE.match(str(doc.get("preferredUsername", ""))):
            self.fail(path, "preferredUsername does not match Mastodon's username rule")
        if not doc.get("inbox"):
            self.fail(path, "the actor has no inbox")
        key = doc.get("publicKey")
        actor_id = str(doc.get("id"))
        if not isinstance(key, dict):
            self.fail(path, "the actor has no publicKey")
            return
        if not str(key.get("id", "")).startswith(actor_id + "#") or key.get("owner") != actor_id:
            self.fail(path, "publicKey id must be the actor id plus a #fragment, owned by it")
        try:
            if load_public_key(str(key.get("publicKeyPem", ""))).key_size < 2048:
                self.fail(path, "the public key is shorter than 2048 bits")
        except Exception as exc:  # any unreadable key is a finding, whatever the reason
            self.fail(path, f"publicKeyPem does not parse: {exc}")
        if urlsplit(str(doc.get("url", ""))).netloc != urlsplit(actor_id).netloc:
            self.fail(path, "the profile url is on another host than the actor (Mastodon drops it)")

    def _check_webfinger(self, path: str, doc: dict[str, object]) -> None:
        handle = self.urls.handle()
        if doc.get("subject") != f"acct:{handle}":
            self.fail(path, f"subject must be acct:{handle}")
        links = doc.get("links")
        selfs = [
            link
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, dict)
            and link.get("rel") == "self"
            and link.get("type") == AP_MEDIA_TYPE
        ]
        if not selfs or selfs[0].get("href") != self.urls.actor():
            self.fail(
                path, "the self link must point at the actor id, byte for byte (FEDERATION.md §1.3)"
            )

    def finish(self) -> list[Diagnostic]:
        """Cross-document checks; call after every file was visited."""
        for page_url, object_id in self._object_pages.items():
            path = page_file(page_url)
            found = self._alternates.get(path)
            if found is not None and found != [object_id]:
                self.fail(
                    path,
                    f"the page must link its object exactly once ({object_id})",
                    "Mastodon finds the object through <link rel=alternate> (FEDERATION.md §5.8)",
                )
        return self.problems


def page_file(page_url: str) -> str:
    """The file under the site root that holds a post page's HTML: `posts/hello/index.html`."""
    return urlsplit(page_url).path.lstrip("/") + "index.html"


def _kind(path: str) -> str | None:
    if path.startswith("ap/"):
        return "ap"
    if path == ".well-known/webfinger":
        return "webfinger"
    if path.startswith("nodeinfo/"):
        return "nodeinfo"
    return None


def check_files(
    config: Config,
    files: Iterable[tuple[str, bytes]],
    header_rules: Sequence[HeaderRule],
    redirect_rules: Sequence[RedirectRule],
) -> list[Diagnostic]:
    checker = DocumentChecker(config, header_rules, redirect_rules)
    for path, data in files:
        checker.visit(path, data)
    return checker.finish()
