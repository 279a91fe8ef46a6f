"""ActivityPub documents of the blog: actor, post objects, activities and collections.

Pure: dicts out, ready for json.dumps; no file, network or clock access (times are
parameters). "§" points into FEDERATION.md, the acceptance bar for every field here.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from fedipress.config import Config, ProfileField, TopicAccount
from fedipress.documents.matrix import matrix_to
from fedipress.documents.media import AS_CONTEXT, PUBLIC, JSONObject
from fedipress.documents.post import Post, Tag, slugify
from fedipress.documents.urls import Urls, require_fediverse, to_uri

OUTBOX_PAGE_SIZE = 20
# Mastodon keeps at most four attachments (status.rb MEDIA_ATTACHMENTS_LIMIT, FEDERATION.md §5.4).
MAX_ATTACHMENTS = 4

# The actor context is Mastodon's own (actor_serializer.rb, FEDERATION.md §2.3): the AS URL, two
# context URLs that Fedify preloads, and Mastodon's term definitions copied verbatim from
# context_helper.rb. Mastodon only checks for the AS URL, but Fedify-based servers (Ghost,
# Hollo) expand JSON-LD and silently drop terms that the context does not define.
_MASTODON_TERMS: JSONObject = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
    "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    "toot": "http://joinmastodon.org/ns#",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "featuredTags": {"@id": "toot:featuredTags", "@type": "@id"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "attributionDomains": {"@id": "toot:attributionDomains", "@container": "@set"},
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "blurhash": "toot:blurhash",
    "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
}
_ACTOR_CONTEXT: list[object] = [
    AS_CONTEXT,
    "https://w3id.org/security/v1",
    "https://purl.archive.org/socialweb/webfinger",
    _MASTODON_TERMS,
]
# Posts use two terms outside the AS vocabulary (FEDERATION.md §5.11).
_POST_CONTEXT: list[object] = [AS_CONTEXT, {"sensitive": "as:sensitive", "Hashtag": "as:Hashtag"}]

# A fixed table, not `mimetypes`, which reads /etc/mime.types and differs between machines.
# These are the image types Mastodon stores (media_attachment.rb, FEDERATION.md §5.4); any other
# `mediaType` becomes an unusable "unknown" attachment that still takes one of four slots.
_IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
_URL_VALUE = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_SCHEME = re.compile(r"^https?://", re.IGNORECASE)
_HREF_SRC = re.compile(r'(\s(?:href|src)=")([^"]*)(")')
_NOT_HASHTAG_CHAR = re.compile(r"\W", re.UNICODE)


def parse_time(value: object) -> datetime | None:
    """An ActivityStreams timestamp ('2024-05-01T12:00:00Z') as an aware datetime; None for
    anything else, including times without an offset (they name no instant) and instants
    outside the years 1000-9999 in UTC (`9999-12-31T23:59:59-23:59` has no UTC form, and
    stores keep times as fixed-width UTC text)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        in_utc = parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
    if in_utc is None or not 1000 <= in_utc.year <= 9999:
        return None
    return parsed


def format_time(when: datetime) -> str:
    """The timestamp form Mastodon writes: UTC, whole seconds, 'Z'."""
    return _iso(when)


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"a naive datetime has no defined instant (got {when!r})")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _media_type(url: str) -> str | None:
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    return _IMAGE_TYPES.get(path[dot:]) if dot > path.rfind("/") else None


def _text(document: Mapping[str, object], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str):
        raise ValueError(f"the document has no string '{key}' (got {value!r})")
    return value


def _embedded(document: Mapping[str, object]) -> JSONObject:
    """A copy without `@context`: the enclosing document's context covers it."""
    return {key: value for key, value in document.items() if key != "@context"}


# --- actor ------------------------------------------------------------------------------


def build_actor(
    config: Config,
    public_key_pem: str,
    *,
    published: datetime,
    summary_html: str,
    avatar_url: str | None,
    header_url: str | None,
    account: str = "",
) -> JSONObject:
    """The actor document served at `Urls.actor()` (FEDERATION.md §2.2, §2.5), of the main
    account or of the topic account `account` (FEDERATION.md §13).

    `avatar_url` and `header_url` may be site paths; empty or None leaves them out.
    Raises ValueError when the config has no `fediverse` section.
    """
    fedi = require_fediverse(config)
    urls = Urls(config).for_account(account)
    topic = fedi.account(account) if account else None
    actor_id = urls.actor()
    actor: JSONObject = {
        "@context": copy.deepcopy(_ACTOR_CONTEXT),
        "id": actor_id,
        "type": fedi.actor_type,
        "preferredUsername": urls.username(),
        # FEP-2c59: the plain form is the SHOULD; Mastodon 4.6+ webfingers it directly
        # instead of guessing preferredUsername@host (process_account_service.rb,
        # FEDERATION.md §1.3).
        "webfinger": urls.handle(),
        "name": (topic.display_name or _topic_name(config, topic))
        if topic
        else (fedi.display_name or config.title),
        "summary": summary_html + (_topic_backlink(config, topic) if topic else _topics(config)),
        # Mastodon drops a profile `url` on another host than the id (FEDERATION.md §2.2).
        "url": _topic_page(urls, topic) if topic else urls.home(),
        "published": _iso(published),
        "inbox": urls.inbox(),
        "outbox": urls.outbox(),
        "followers": urls.followers(),
        "following": urls.following(),
        "featured": urls.featured(),
        "endpoints": {"sharedInbox": urls.shared_inbox()},
        "manuallyApprovesFollowers": fedi.manually_approves_followers,
        # Both default to false on Mastodon when absent (FEP-5feb), so always say them.
        "discoverable": fedi.discoverable,
        "indexable": fedi.indexable,
        # Lets Mastodon 4.3+ credit this actor on link cards of the blog's own pages
        # (FEDERATION.md §5.9).
        "attributionDomains": list(fedi.attribution_domains)
        or [urlsplit(config.base_url).hostname or config.host],
        "alsoKnownAs": list(topic.also_known_as if topic else fedi.also_known_as),
        "attachment": [_property_value(field) for field in _fields(config, topic)]
        + ([] if topic else _matrix_field(config, fedi.fields)),
        "publicKey": {
            "id": urls.key_id(),
            "owner": actor_id,
            "publicKeyPem": public_key_pem,
        },
    }
    if topic is not None:
        # A topic account's posts are boosts of the main account's: it pins nothing, and
        # link cards credit the main account only (FEDERATION.md §13).
        del actor["featured"], actor["attributionDomains"]
    moved_to = topic.moved_to if topic else fedi.moved_to
    if moved_to:
        actor["movedTo"] = moved_to
    for key, url in (("icon", avatar_url), ("image", header_url)):
        if url:
            actor[key] = _image(urljoin(urls.home(), url))
    return actor


def _topic_name(config: Config, topic: TopicAccount) -> str:
    return f"{config.title}: " + ", ".join(f"#{tag}" for tag in topic.tags)


def _topic_page(urls: Urls, topic: TopicAccount) -> str:
    """A topic account's profile `url`: the page of its first tag, on the blog's host."""
    return urls.page(Tag(topic.tags[0], slugify(topic.tags[0])).url)


def _fields(config: Config, topic: TopicAccount | None) -> list[ProfileField]:
    """The main account's profile fields; a topic account's link back to the blog and to
    the main account (FEDERATION.md §13)."""
    fedi = require_fediverse(config)
    if topic is None:
        return list(fedi.fields)
    return [
        ProfileField("Blog", Urls(config).home()),
        ProfileField("Author", f"@{Urls(config).handle()}"),
    ]


def _topic_backlink(config: Config, topic: TopicAccount) -> str:
    urls = Urls(config)
    pages = [(t, html.escape(urls.page(Tag(t, slugify(t)).url))) for t in topic.tags]
    tags = ", ".join(f'<a href="{href}" rel="tag">#{html.escape(t)}</a>' for t, href in pages)
    return (
        f"<p>Posts tagged {tags} from "
        f'<a href="{html.escape(urls.home())}">{html.escape(config.title)}</a>, boosted from '
        f"{_mention(urls.home(), urls.username())}.</p>"
    )


def _topics(config: Config) -> str:
    """The main account's summary lists the topic accounts, so readers find them."""
    fedi = require_fediverse(config)
    if not fedi.accounts:
        return ""
    links = []
    for topic in fedi.accounts:
        urls = Urls(config, topic.username)
        tags = ", ".join(f"#{html.escape(t)}" for t in topic.tags)
        links.append(f"{_mention(_topic_page(urls, topic), topic.username)} ({tags})")
    return f"<p>By topic: {', '.join(links)}.</p>"


def _mention(href: str, username: str) -> str:
    # The markup Mastodon writes for a mention, so clients show it as one.
    return (
        f'<span class="h-card"><a href="{html.escape(href)}" class="u-url mention">'
        f"@<span>{html.escape(username)}</span></a></span>"
    )


def _image(url: str) -> JSONObject:
    image: JSONObject = {"type": "Image", "url": to_uri(url)}
    if media_type := _media_type(url):
        image["mediaType"] = media_type
    return image


def _property_value(field: ProfileField) -> JSONObject:
    # Mastodon reads `value` as HTML (FEDERATION.md §2.2). A URL becomes a link in the markup
    # Mastodon writes for its own profile fields (rel="me …", text without the scheme), so it looks
    # native; plain text is escaped so that it stays text.
    value = field.value.strip()
    if _URL_VALUE.fullmatch(value):
        shown = _SCHEME.sub("", value).rstrip("/") or value
        value_html = (
            f'<a href="{html.escape(value)}" rel="me nofollow noopener noreferrer" '
            f'target="_blank">{html.escape(shown)}</a>'
        )
    else:
        value_html = html.escape(value)
    return {"type": "PropertyValue", "name": field.name, "value": value_html}


def _matrix_field(config: Config, fields: Sequence[ProfileField]) -> list[JSONObject]:
    """The author's Matrix address (`matrix.address`) as a profile field linking to
    matrix.to, unless a field of that name is already there."""
    address = config.matrix.address if config.matrix is not None else ""
    if not address or any(f.name.strip().lower() == "matrix" for f in fields):
        return []
    link = html.escape(matrix_to(address))
    value = (
        f'<a href="{link}" rel="nofollow noopener noreferrer" target="_blank">'
        f"{html.escape(address)}</a>"
    )
    return [{"type": "PropertyValue", "name": "Matrix", "value": value}]


# --- post objects -----------------------------------------------------------------------


def build_object(
    config: Config,
    post: Post,
    *,
    version: str | None = None,
    edited: datetime | None = None,
) -> JSONObject:
    """The Note or Article served at `Urls.post(post.uid)` (FEDERATION.md §5.3, §5.4).

    `edited` is when the build first saw the object's current text, for a post edited after
    it was published: the object then carries it as `updated`, the time the Update that
    `fedipress publish` sends carries too (§5.5). Pass `version` when the object is built for
    an Update: it then must carry `updated`, since Mastodon ignores an edit without a newer
    `updated`. Raises ValueError for that, for a post without a date, and when the config has
    no `fediverse` section.
    """
    fedi = require_fediverse(config)
    if post.date is None:
        raise ValueError(f"post {post.uid!r} has no date, so it cannot be published")
    urls = Urls(config)
    object_id = urls.post(post.uid)
    updated = max((t for t in (post.updated, edited) if t is not None), default=None)
    if version is not None:
        urls.update(object_id, version)  # validates the version
        if updated is None:
            raise ValueError(f"post {post.uid!r} needs 'updated' to be sent as an edit")
    kind = post.post_type or fedi.post_type
    page = urls.page(post.url)
    hashtags = _hashtags(urls, post)
    body = _HREF_SRC.sub(lambda m: m[1] + urljoin(page, m[2]) + m[3], post.content)
    # Servers strip <img> and <input> (Mastodon, GoToSocial): inline images become
    # attachments, task boxes become ☐/☑ (FEDERATION.md §5.4).
    attachments = [] if kind == "Article" else _attachments(post, page)
    body = _degrade(body, None if kind == "Article" else attachments)
    title = f"<p><strong>{html.escape(post.title, quote=False)}</strong></p>"
    if kind == "Article":
        # Mastodon shows an Article's `name` and a link with its preview card, and ignores
        # `content`; GoToSocial and Misskey show `content` under `summary` as a content
        # warning (GoToSocial: `name` when there is no summary). So `summary` is only ever a
        # real warning, and the title leads `content` (FEDERATION.md §5.3).
        content = title + body + _hashtag_paragraph(hashtags)
    else:
        # Mastodon renders a Note's `content`: a title line, the post, and a permalink
        # that people can follow to the page (FEDERATION.md §5.3 recommendation).
        link = html.escape(page)
        content = (
            title + body + f'<p><a href="{link}">{link}</a></p>' + _hashtag_paragraph(hashtags)
        )
    sensitive = bool(post.content_warning) or (
        fedi.sensitive if post.sensitive is None else post.sensitive
    )
    obj: JSONObject = {
        "@context": copy.deepcopy(_POST_CONTEXT),
        "id": object_id,
        "type": kind,
        "attributedTo": urls.actor(),
        # Public, as Mastodon addresses its own public posts (tag_manager.rb, FEDERATION.md §5.2).
        "to": [PUBLIC],
        "cc": [urls.followers()],
        "published": _iso(post.date),
    }
    if updated is not None:
        obj["updated"] = _iso(updated)
    if kind == "Article":
        obj["name"] = post.title
    if post.content_warning:
        obj["summary"] = post.content_warning  # the content warning, on every server
    obj |= {
        "url": page,
        "sensitive": sensitive,
        "content": content,
        # Mastodon takes the post language from the first contentMap key (FEDERATION.md §5.4).
        "contentMap": {config.language: content},
        "tag": [{"type": "Hashtag", "name": f"#{name}", "href": href} for name, href in hashtags],
        # An Article is link-first: media would suppress Mastodon's preview card and its
        # "More from" byline (fetch_link_card_service.rb, FEDERATION.md §5.9, §5.11).
        "attachment": attachments,
        "replies": urls.replies(post.uid),
    }
    return obj


_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r'\b(src|alt)="([^"]*)"', re.IGNORECASE)
_TASK_BOX = re.compile(r'<input class="task-list-item-checkbox"[^>]*>', re.IGNORECASE)
_EMPTY_LINK = re.compile(r"<a\b[^>]*>\s*</a>", re.IGNORECASE)
_EMPTY_PARAGRAPH = re.compile(r"<p>\s*</p>\n?", re.IGNORECASE)


def _degrade(body: str, attachments: list[JSONObject] | None) -> str:
    """The post's HTML as servers that strip images and form fields still show it well.

    An inline image becomes an attachment (added to `attachments`) while there is room (at
    most four, of a type servers store) and leaves nothing behind, not even an empty
    paragraph; any other image, and every image when `attachments` is None (an Article,
    whose preview card media would hide), becomes a link labelled with its alt text. Task
    list boxes become ☐ and ☑."""
    if "<input" in body:
        body = _TASK_BOX.sub(lambda m: "☑" if "checked" in m.group(0).lower() else "☐", body)
    if "<img" not in body.lower():
        return body
    attached = {str(a["url"]) for a in attachments or ()}

    def replace(match: re.Match[str]) -> str:
        found = {k.lower(): html.unescape(v) for k, v in _ATTRIBUTE.findall(match.group(0))}
        src, alt = found.get("src", ""), found.get("alt", "")
        url = to_uri(src) if src else ""
        if not url:
            return ""
        if url in attached:
            return ""
        media_type = _media_type(url)
        if attachments is not None and media_type and len(attachments) < MAX_ATTACHMENTS:
            attachments.append({"type": "Image", "mediaType": media_type, "url": url, "name": alt})
            attached.add(url)
            return ""
        label = html.escape(alt or urlsplit(url).path.rsplit("/", 1)[-1] or url, quote=False)
        return f'<a href="{html.escape(url)}">{label}</a>'

    body = _IMG_TAG.sub(replace, body)
    body = _EMPTY_LINK.sub("", body)
    return _EMPTY_PARAGRAPH.sub("", body)


def _hashtags(urls: Urls, post: Post) -> list[tuple[str, str]]:
    """(name, href) pairs. Mastodon strips non-word characters from a hashtag name and
    rejects one without a letter, such as #2026 (tag.rb, hashtag_normalizer.rb,
    FEDERATION.md §5.4)."""
    result: dict[str, tuple[str, str]] = {}
    for tag in post.tags:
        name = _NOT_HASHTAG_CHAR.sub("", tag.name)
        if any(ch.isalpha() for ch in name):
            result.setdefault(name.casefold(), (name, urls.page(tag.url)))
    return list(result.values())


def _hashtag_paragraph(hashtags: Sequence[tuple[str, str]]) -> str:
    # The markup Mastodon writes, so clients show them as hashtags (fedify pragmatics.md).
    links = [
        f'<a href="{html.escape(href)}" class="mention hashtag" rel="tag">'
        f"#<span>{html.escape(name)}</span></a>"
        for name, href in hashtags
    ]
    return f"<p>{' '.join(links)}</p>" if links else ""


def _attachments(post: Post, page: str) -> list[JSONObject]:
    # Mastodon strips inline <img>, so images reach followers only as attachments
    # (FEDERATION.md §5.4).
    sources = ([(post.image, post.image_alt)] if post.image else []) + list(post.images)
    result: dict[str, JSONObject] = {}
    for src, alt in sources:
        url = to_uri(urljoin(page, src))
        media_type = _media_type(url)
        if media_type is None or url in result:
            continue
        # Mastodon reads alt text from `summary`, else `name`; `name` is what it sends.
        result[url] = {"type": "Image", "mediaType": media_type, "url": url, "name": alt}
    return list(result.values())[:MAX_ATTACHMENTS]


# --- activities -------------------------------------------------------------------------


def build_create(config: Config, obj: Mapping[str, object]) -> JSONObject:
    """Create embedding the full object: Mastodon refetches a bare URI, we save it
    (FEDERATION.md §5.1)."""
    urls = Urls(config)
    return {
        "@context": copy.deepcopy(obj.get("@context", _POST_CONTEXT)),
        "id": urls.create(_text(obj, "id")),
        "type": "Create",
        "actor": urls.actor(),
        "published": _text(obj, "published"),
        "to": copy.deepcopy(obj.get("to", [PUBLIC])),
        "cc": copy.deepcopy(obj.get("cc", [urls.followers()])),
        "object": _embedded(obj),
    }


def build_update(config: Config, obj: Mapping[str, object], version: str) -> JSONObject:
    """Update embedding the new object, which Mastodon applies as-is (FEDERATION.md §5.5).

    The caller makes `updated` strictly newer than the last one sent; an object without
    `updated` raises ValueError, since Mastodon would keep the old text.
    """
    urls = Urls(config)
    updated = _text(obj, "updated")
    return {
        "@context": copy.deepcopy(obj.get("@context", _POST_CONTEXT)),
        "id": urls.update(_text(obj, "id"), version),
        "type": "Update",
        "actor": urls.actor(),
        "published": updated,
        "to": copy.deepcopy(obj.get("to", [PUBLIC])),
        "cc": copy.deepcopy(obj.get("cc", [urls.followers()])),
        "object": _embedded(obj),
    }


def build_tombstone(object_id: str, former_type: str, deleted: datetime) -> JSONObject:
    """The document left at a removed object id: the id is never reused (FEDERATION.md §5.6)."""
    return {
        "@context": AS_CONTEXT,
        "id": object_id,
        "type": "Tombstone",
        "formerType": former_type,
        "deleted": _iso(deleted),
    }


def build_delete(config: Config, object_id: str, former_type: str, deleted: datetime) -> JSONObject:
    """Delete with a Tombstone object, the shape of Mastodon's delete_note_serializer.rb."""
    urls = Urls(config)
    return {
        "@context": AS_CONTEXT,
        "id": urls.delete(object_id),
        "type": "Delete",
        "actor": urls.actor(),
        "published": _iso(deleted),
        "to": [PUBLIC],
        "cc": [urls.followers()],
        "object": _embedded(build_tombstone(object_id, former_type, deleted)),
    }


def build_move(config: Config, target: str, number: int, account: str = "") -> JSONObject:
    """Move the followers of an account to `target`, whose `alsoKnownAs` must list the
    account's actor (FEDERATION.md §8.3).

    Mastodon accepts only the push form, `object == actor` (move.rb, FEDERATION.md §8.1).
    """
    urls = Urls(config).for_account(account)
    if not target.startswith(("https://", "http://")) or target == urls.actor():
        raise ValueError(f"the Move target must be another actor's URL (got {target!r})")
    return {
        "@context": AS_CONTEXT,
        "id": urls.move(number),
        "type": "Move",
        "actor": urls.actor(),
        "object": urls.actor(),
        "target": target,
        "to": [urls.followers()],
    }


def build_update_actor(config: Config, actor: Mapping[str, object]) -> JSONObject:
    """Update(actor) after a profile change, of any account of the site; the id holds a hash
    of the new actor, so each distinct profile gets its own activity id (some servers drop a
    repeated id, FEDERATION.md §5.11)."""
    base = Urls(config)
    account = base.account_of(_text(actor, "id"))
    if account is None:
        raise ValueError(f"not an actor of this site: {actor.get('id')!r}")
    urls = base.for_account(account)
    return {
        "@context": copy.deepcopy(actor.get("@context", _ACTOR_CONTEXT)),
        "id": urls.update(urls.actor(), actor_version(actor)),
        "type": "Update",
        "actor": urls.actor(),
        "to": [PUBLIC],
        "cc": [urls.followers()],
        "object": _embedded(actor),
    }


def actor_version(actor: Mapping[str, object]) -> str:
    """A hash of what followers see of an actor: a different hash is a profile change.
    `published` is left out: it follows the oldest post, and a back-dated post is no
    profile change (the next Update carries it anyway)."""
    stable = {key: value for key, value in actor.items() if key != "published"}
    blob = json.dumps(stable, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def build_announce(
    config: Config, account: str, object_id: str, published: str | None = None
) -> JSONObject:
    """A topic account's boost of one of the main account's posts (FEDERATION.md §13): the
    object stays the main account's, one canonical object and one conversation. Addressed as
    Mastodon addresses a public boost (announce_serializer.rb): Public, the author, and the
    booster's followers."""
    urls = Urls(config).for_account(account)
    announce: JSONObject = {
        "@context": AS_CONTEXT,
        "id": urls.announce(urls.uid_of(object_id)),
        "type": "Announce",
        "actor": urls.actor(),
    }
    if published:
        announce["published"] = published
    announce |= {
        "to": [PUBLIC],
        "cc": [Urls(config).actor(), urls.followers()],
        "object": object_id,
    }
    return announce


def build_undo(activity: Mapping[str, object]) -> JSONObject:
    """Undo of one of our activities (an Announce), embedding it: Mastodon matches the boost
    by the embedded id (undo.rb)."""
    return {
        "@context": AS_CONTEXT,
        "id": f"{_text(activity, 'id')}#undo",
        "type": "Undo",
        "actor": _text(activity, "actor"),
        "to": copy.deepcopy(activity.get("to", [PUBLIC])),
        "cc": copy.deepcopy(activity.get("cc", [])),
        "object": _embedded(activity),
    }


# --- collections ------------------------------------------------------------------------


def build_outbox(
    config: Config,
    objects_newest_first: Sequence[Mapping[str, object]],
    page_size: int = OUTBOX_PAGE_SIZE,
) -> tuple[JSONObject, list[JSONObject]]:
    """The outbox collection and its pages of Create activities, newest first."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1 (got {page_size})")
    chunks = [
        objects_newest_first[i : i + page_size]
        for i in range(0, len(objects_newest_first), page_size)
    ]
    outbox = build_outbox_collection(config, len(objects_newest_first), len(chunks))
    pages = [
        build_outbox_page(config, chunk, number, len(chunks))
        for number, chunk in enumerate(chunks, start=1)
    ]
    return outbox, pages


def build_outbox_collection(
    config: Config, total: int, pages: int, account: str = ""
) -> JSONObject:
    """The outbox itself. Mastodon reads only its `totalItems` (FEDERATION.md §2.2). An empty outbox
    has inline empty `orderedItems` and no `first`: a complete collection needs no page file, and
    there is no link that could point at a page that does not exist."""
    urls = Urls(config).for_account(account)
    outbox: JSONObject = {
        "@context": AS_CONTEXT,
        "id": urls.outbox(),
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if pages:
        outbox["first"] = urls.outbox_page(1)
        outbox["last"] = urls.outbox_page(pages)
    else:
        outbox["orderedItems"] = []
    return outbox


def build_outbox_page(
    config: Config,
    objects: Sequence[Mapping[str, object]],
    number: int,
    pages: int,
    account: str = "",
) -> JSONObject:
    """Page `number` (1-based) of `pages`: Create activities embedding the objects, or for a
    topic account its Announces of them (as Mastodon's outbox lists boosts)."""
    urls = Urls(config).for_account(account)
    page: JSONObject = {
        "@context": copy.deepcopy(_POST_CONTEXT),
        "id": urls.outbox_page(number),
        "type": "OrderedCollectionPage",
        "partOf": urls.outbox(),
    }
    # `next` goes to older items, as in Mastodon's own outbox pages.
    if number > 1:
        page["prev"] = urls.outbox_page(number - 1)
    if number < pages:
        page["next"] = urls.outbox_page(number + 1)
    if account:
        page["orderedItems"] = [
            _embedded(
                build_announce(config, account, _text(obj, "id"), str(obj.get("published", "")))
            )
            for obj in objects
        ]
    else:
        page["orderedItems"] = [_embedded(build_create(config, obj)) for obj in objects]
    return page


def build_featured(config: Config, object_ids: Sequence[str]) -> JSONObject:
    """Pinned posts as URI strings inline: Mastodon reads page 1 only and skips embedded
    Articles, but fetches Article URIs (fetch_featured_collection_service.rb,
    FEDERATION.md §2.2)."""
    urls = Urls(config)
    return {
        "@context": AS_CONTEXT,
        "id": urls.featured(),
        "type": "OrderedCollection",
        "totalItems": len(object_ids),
        "orderedItems": list(object_ids),
    }


def build_followers(config: Config, total: int | None, account: str = "") -> JSONObject:
    """The follower count only. Without `first` Mastodon shows the list as hidden, which
    keeps followers private (FEDERATION.md §2.5); without `total` the count is left out too."""
    followers: JSONObject = {
        "@context": AS_CONTEXT,
        "id": Urls(config).for_account(account).followers(),
        "type": "OrderedCollection",
    }
    if total is not None:
        followers["totalItems"] = total
    return followers


def build_following(config: Config, account: str = "") -> JSONObject:
    """The blog follows nobody: a complete, empty collection."""
    return _empty_collection(Urls(config).for_account(account).following())


def build_replies(config: Config, object_id: str, reply_ids: Sequence[str] = ()) -> JSONObject:
    """The replies collection of a post: its approved public replies' ids (direct replies
    only; each reply's own collection holds the replies to it), oldest first, on an embedded
    first page. Mastodon reads `first` and its `orderedItems`, GoToSocial wants the page
    embedded (FEDERATION.md §5.12)."""
    urls = Urls(config)
    collection_id = urls.replies(urls.uid_of(object_id))
    return {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": len(reply_ids),
        "first": {
            "type": "OrderedCollectionPage",
            "partOf": collection_id,
            "orderedItems": list(reply_ids),
        },
    }


def build_reactions(config: Config, object_id: str, kind: str, total: int) -> JSONObject:
    """The `likes` (kind "Like") or `shares` ("Announce") collection of a post: the count in
    `totalItems`, which Mastodon 4.3+ shows on remote posts, and no items, as Mastodon serves
    its own (FEDERATION.md §5.12). Who liked or boosted is on the post's page."""
    urls = Urls(config)
    uid = urls.uid_of(object_id)
    return {
        "@context": AS_CONTEXT,
        "id": urls.likes(uid) if kind == "Like" else urls.shares(uid),
        "type": "OrderedCollection",
        "totalItems": total,
    }


def with_interactions(
    obj: Mapping[str, object],
    replies: Mapping[str, object],
    likes: Mapping[str, object],
    shares: Mapping[str, object],
) -> JSONObject:
    """The post object as served at its id: `replies` embedded with its first page, and
    `likes` and `shares` with their counts. Create, Update and the outbox keep the plain
    object, so a new like never looks like an edit to followers."""
    result = dict(obj)
    result["replies"] = _embedded(replies)
    for key, collection in (("likes", likes), ("shares", shares)):
        result[key] = {
            "id": collection["id"],
            "type": collection["type"],
            "totalItems": collection["totalItems"],
        }
    return result


def _empty_collection(collection_id: str) -> JSONObject:
    return {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": 0,
        "orderedItems": [],
    }
