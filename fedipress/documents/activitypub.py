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

from fedipress.config import Config, ProfileField
from fedipress.documents.media import AS_CONTEXT, PUBLIC, JSONObject
from fedipress.documents.post import Post
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
) -> JSONObject:
    """The actor document served at `Urls.actor()` (FEDERATION.md §2.2, §2.5).

    `avatar_url` and `header_url` may be site paths; empty or None leaves them out.
    Raises ValueError when the config has no `fediverse` section.
    """
    fedi = require_fediverse(config)
    urls = Urls(config)
    actor_id = urls.actor()
    actor: JSONObject = {
        "@context": copy.deepcopy(_ACTOR_CONTEXT),
        "id": actor_id,
        "type": fedi.actor_type,
        "preferredUsername": fedi.username,
        # FEP-2c59: the plain form is the SHOULD; Mastodon 4.6+ webfingers it directly
        # instead of guessing preferredUsername@host (process_account_service.rb,
        # FEDERATION.md §1.3).
        "webfinger": urls.handle(),
        "name": fedi.display_name or config.title,
        "summary": summary_html,
        # Mastodon drops a profile `url` on another host than the id (FEDERATION.md §2.2).
        "url": urls.home(),
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
        "alsoKnownAs": list(fedi.also_known_as),
        "attachment": [_property_value(field) for field in fedi.fields],
        "publicKey": {
            "id": urls.key_id(),
            "owner": actor_id,
            "publicKeyPem": public_key_pem,
        },
    }
    if fedi.moved_to:
        actor["movedTo"] = fedi.moved_to
    for key, url in (("icon", avatar_url), ("image", header_url)):
        if url:
            actor[key] = _image(urljoin(urls.home(), url))
    return actor


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


# --- post objects -----------------------------------------------------------------------


def build_object(config: Config, post: Post, *, version: str | None = None) -> JSONObject:
    """The Note or Article served at `Urls.post(post.uid)` (FEDERATION.md §5.3, §5.4).

    Pass `version` when the object is built for an Update: it then must carry `updated`,
    since Mastodon ignores an edit without a newer `updated` (FEDERATION.md §5.5). Raises ValueError
    for that, for a post without a date, and when the config has no `fediverse` section.
    """
    fedi = require_fediverse(config)
    if post.date is None:
        raise ValueError(f"post {post.uid!r} has no date, so it cannot be published")
    urls = Urls(config)
    object_id = urls.post(post.uid)
    if version is not None:
        urls.update(object_id, version)  # validates the version
        if post.updated is None:
            raise ValueError(f"post {post.uid!r} needs 'updated' to be sent as an edit")
    kind = post.post_type or fedi.post_type
    page = urls.page(post.url)
    hashtags = _hashtags(urls, post)
    body = _HREF_SRC.sub(lambda m: m[1] + urljoin(page, m[2]) + m[3], post.content)
    if kind == "Article":
        # Mastodon shows only name + summary + url for an Article and ignores `content`;
        # Misskey and Fedify apps render `content`, so it is the full post (FEDERATION.md §5.3).
        content = body + _hashtag_paragraph(hashtags)
    else:
        # Mastodon renders a Note's `content`: a title line, the post, and a permalink
        # that people can follow to the page (FEDERATION.md §5.3 recommendation).
        link = html.escape(page)
        content = (
            f"<p><strong>{html.escape(post.title, quote=False)}</strong></p>"
            + body
            + f'<p><a href="{link}">{link}</a></p>'
            + _hashtag_paragraph(hashtags)
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
    if post.updated is not None:
        obj["updated"] = _iso(post.updated)
    if kind == "Article":
        obj["name"] = post.title
        # Misskey shows an Article's summary as a CW over the content (FEDERATION.md §5.3), so a CW
        # takes the place of the excerpt rather than being lost.
        obj["summary"] = post.content_warning or post.description
    elif post.content_warning:
        obj["summary"] = post.content_warning  # Mastodon's CW for a Note
    obj |= {
        "url": page,
        "sensitive": sensitive,
        "content": content,
        # Mastodon takes the post language from the first contentMap key (FEDERATION.md §5.4).
        "contentMap": {config.language: content},
        "tag": [{"type": "Hashtag", "name": f"#{name}", "href": href} for name, href in hashtags],
        # An Article is link-first: media would suppress Mastodon's preview card and its
        # "More from" byline (fetch_link_card_service.rb, FEDERATION.md §5.9, §5.11).
        "attachment": [] if kind == "Article" else _attachments(post, page),
        "replies": urls.replies(post.uid),
    }
    return obj


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


def build_move(config: Config, target: str, number: int) -> JSONObject:
    """Move the followers to `target`, whose `alsoKnownAs` must list our actor (FEDERATION.md §8.3).

    Mastodon accepts only the push form, `object == actor` (move.rb, FEDERATION.md §8.1).
    """
    urls = Urls(config)
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
    """Update(actor) after a profile change; the id holds a hash of the new actor, so each
    distinct profile gets its own activity id (some servers drop a repeated id,
    FEDERATION.md §5.11)."""
    urls = Urls(config)
    if actor.get("id") != urls.actor():
        raise ValueError(f"not this site's actor: {actor.get('id')!r}")
    digest = hashlib.sha256(
        json.dumps(actor, sort_keys=True, ensure_ascii=False).encode("utf-8")
    ).hexdigest()[:16]
    return {
        "@context": copy.deepcopy(actor.get("@context", _ACTOR_CONTEXT)),
        "id": urls.update(urls.actor(), digest),
        "type": "Update",
        "actor": urls.actor(),
        "to": [PUBLIC],
        "cc": [urls.followers()],
        "object": _embedded(actor),
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


def build_outbox_collection(config: Config, total: int, pages: int) -> JSONObject:
    """The outbox itself. Mastodon reads only its `totalItems` (FEDERATION.md §2.2). An empty outbox
    has inline empty `orderedItems` and no `first`: a complete collection needs no page file, and
    there is no link that could point at a page that does not exist."""
    urls = Urls(config)
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
    config: Config, objects: Sequence[Mapping[str, object]], number: int, pages: int
) -> JSONObject:
    """Page `number` (1-based) of `pages`: Create activities embedding the objects."""
    urls = Urls(config)
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


def build_followers(config: Config, total: int | None) -> JSONObject:
    """The follower count only. Without `first` Mastodon shows the list as hidden, which
    keeps followers private (FEDERATION.md §2.5); without `total` the count is left out too."""
    followers: JSONObject = {
        "@context": AS_CONTEXT,
        "id": Urls(config).followers(),
        "type": "OrderedCollection",
    }
    if total is not None:
        followers["totalItems"] = total
    return followers


def build_following(config: Config) -> JSONObject:
    """The blog follows nobody: a complete, empty collection."""
    return _empty_collection(Urls(config).following())


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
