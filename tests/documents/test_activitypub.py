from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedipress.config import Config, FediverseConfig, MatrixConfig, ProfileField
from fedipress.documents.activitypub import (
    build_actor,
    build_create,
    build_delete,
    build_featured,
    build_followers,
    build_following,
    build_move,
    build_object,
    build_outbox,
    build_reactions,
    build_replies,
    build_tombstone,
    build_update,
    build_update_actor,
    with_interactions,
)
from fedipress.documents.media import AS_CONTEXT, PUBLIC
from fedipress.documents.post import Post, Tag
from fedipress.documents.urls import Urls

# FEDERATION.md §12 static checklist values.
ACTOR_TYPES = {"Person", "Service", "Application", "Group", "Organization"}
USERNAME_RE = re.compile(r"^[a-z0-9_]+([.-]+[a-z0-9_]+)*$")
ONE_MB = 1024 * 1024
PUBLISHED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def public_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def make_config(**fediverse: Any) -> Config:
    site = {k: fediverse.pop(k) for k in ("base_url", "language") if k in fediverse}
    return Config.for_test(fediverse=FediverseConfig(username="blog", **fediverse), **site)


def make_post(**overrides: Any) -> Post:
    values: dict[str, Any] = {
        "kind": "post",
        "source": "content/posts/hello.md",
        "title": "Hello world",
        "slug": "hello",
        "url": "/posts/hello/",
        "uid": "hello",
        "date": datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
        "updated": None,
        "tags": (Tag("intro", "intro"),),
        "summary": "<p>First paragraph.</p>",
        "description": "First paragraph.",
        "content": "<p>First paragraph.</p>",
    }
    values.update(overrides)
    return Post(**values)


def served_at(document: dict[str, Any], url: str, urls: Urls) -> None:
    """FEDERATION.md §12: the document's id is the URL it is served at, as a file of the site,
    < 1 MB."""
    assert document["id"] == url
    assert urls.output_path(url)
    assert AS_CONTEXT in (
        document["@context"] if isinstance(document["@context"], list) else [document["@context"]]
    )
    assert len(json.dumps(document).encode("utf-8")) < ONE_MB


def actor_for(config: Config, pem: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "published": PUBLISHED,
        "summary_html": "<p>Posts from blog.example</p>",
        "avatar_url": "/avatar.png",
        "header_url": "https://cdn.example/header.JPG?v=2",
    }
    values.update(overrides)
    return build_actor(config, pem, **values)


# --- actor ------------------------------------------------------------------------------


def test_build_actor__passes_static_checklist(public_key_pem):
    config = make_config()
    urls = Urls(config)

    actor = actor_for(config, public_key_pem)

    served_at(actor, "https://blog.example/ap/actor", urls)
    assert urls.output_path(actor["id"]) == "ap/actor"
    assert actor["type"] in ACTOR_TYPES
    assert USERNAME_RE.match(actor["preferredUsername"])
    assert actor["inbox"] == "https://blog.example/ap/inbox"
    assert actor["endpoints"] == {"sharedInbox": actor["inbox"]}
    assert actor["publicKey"]["id"].startswith(actor["id"] + "#")
    assert actor["publicKey"]["owner"] == actor["id"]
    pem = actor["publicKey"]["publicKeyPem"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size >= 2048
    assert urlsplit(actor["url"]).netloc == urlsplit(actor["id"]).netloc
    assert actor["published"] == "2026-01-01T00:00:00Z"


def test_build_actor__links_to_every_collection(public_key_pem):
    actor = actor_for(make_config(), public_key_pem)

    assert actor["outbox"] == "https://blog.example/ap/outbox"
    assert actor["followers"] == "https://blog.example/ap/followers"
    assert actor["following"] == "https://blog.example/ap/following"
    assert actor["featured"] == "https://blog.example/ap/featured"
    assert actor["url"] == "https://blog.example/"


def test_build_actor__context_is_mastodons(public_key_pem):
    context = actor_for(make_config(), public_key_pem)["@context"]

    assert context[:3] == [
        AS_CONTEXT,
        "https://w3id.org/security/v1",
        "https://purl.archive.org/socialweb/webfinger",
    ]
    assert len(context) == 4
    terms = context[3]
    assert terms["manuallyApprovesFollowers"] == "as:manuallyApprovesFollowers"
    assert terms["alsoKnownAs"] == {"@id": "as:alsoKnownAs", "@type": "@id"}
    assert terms["movedTo"] == {"@id": "as:movedTo", "@type": "@id"}
    assert terms["toot"] == "http://joinmastodon.org/ns#"
    assert terms["featured"] == {"@id": "toot:featured", "@type": "@id"}
    assert terms["attributionDomains"] == {
        "@id": "toot:attributionDomains",
        "@container": "@set",
    }
    assert terms["schema"] == "http://schema.org#"
    assert terms["PropertyValue"] == "schema:PropertyValue"
    assert terms["value"] == "schema:value"
    assert {"discoverable", "indexable", "sensitive", "Hashtag"} <= terms.keys()


def test_build_actor__profile_flags_from_config(public_key_pem):
    config = make_config(
        display_name="Example Blog",
        actor_type="Service",
        manually_approves_followers=True,
        discoverable=False,
        indexable=False,
        also_known_as=("https://mastodon.example/users/old",),
    )

    actor = actor_for(config, public_key_pem)

    assert actor["name"] == "Example Blog"
    assert actor["type"] == "Service"
    assert actor["webfinger"] == "blog@blog.example"
    assert actor["manuallyApprovesFollowers"] is True
    assert actor["discoverable"] is False
    assert actor["indexable"] is False
    assert actor["alsoKnownAs"] == ["https://mastodon.example/users/old"]
    assert actor["summary"] == "<p>Posts from blog.example</p>"
    assert "movedTo" not in actor


def test_build_actor__name_falls_back_to_site_title(public_key_pem):
    assert actor_for(make_config(), public_key_pem)["name"] == "Test Blog"


def test_build_actor__moved_to_when_set(public_key_pem):
    actor = actor_for(make_config(moved_to="https://new.example/ap/actor"), public_key_pem)

    assert actor["movedTo"] == "https://new.example/ap/actor"


def test_build_actor__attribution_domains_default_to_site_host(public_key_pem):
    default = actor_for(make_config(base_url="https://blog.example:8443/"), public_key_pem)
    chosen = actor_for(make_config(attribution_domains=("example.com",)), public_key_pem)

    assert default["attributionDomains"] == ["blog.example"]
    assert chosen["attributionDomains"] == ["example.com"]


def test_build_actor__icon_and_image_with_media_type(public_key_pem):
    actor = actor_for(make_config(), public_key_pem)

    assert actor["icon"] == {
        "type": "Image",
        "url": "https://blog.example/avatar.png",
        "mediaType": "image/png",
    }
    assert actor["image"] == {
        "type": "Image",
        "url": "https://cdn.example/header.JPG?v=2",
        "mediaType": "image/jpeg",
    }


def test_build_actor__unknown_image_extension_and_missing_images(public_key_pem):
    actor = actor_for(make_config(), public_key_pem, avatar_url="/avatar?size=400", header_url=None)

    assert actor["icon"] == {"type": "Image", "url": "https://blog.example/avatar?size=400"}
    assert "image" not in actor


def test_build_actor__profile_field_values_are_html(public_key_pem):
    config = make_config(
        fields=(
            ProfileField("Website", "https://blog.example/"),
            ProfileField("Pronouns", "they/them <3 & co"),
        )
    )

    fields = actor_for(config, public_key_pem)["attachment"]

    assert fields == [
        {
            "type": "PropertyValue",
            "name": "Website",
            "value": '<a href="https://blog.example/" rel="me nofollow noopener noreferrer" '
            'target="_blank">blog.example</a>',
        },
        {"type": "PropertyValue", "name": "Pronouns", "value": "they/them &lt;3 &amp; co"},
    ]


def test_build_actor__inbox_on_another_host(public_key_pem):
    actor = actor_for(make_config(inbox="https://fn.example.net/inbox"), public_key_pem)

    assert actor["inbox"] == "https://fn.example.net/inbox"
    assert actor["endpoints"]["sharedInbox"] == "https://fn.example.net/inbox"


def test_build_actor__site_without_fediverse_section(public_key_pem):
    with pytest.raises(ValueError, match="fediverse"):
        actor_for(Config.for_test(), public_key_pem)


def test_build_actor__naive_published(public_key_pem):
    with pytest.raises(ValueError, match="naive"):
        actor_for(make_config(), public_key_pem, published=datetime(2026, 1, 1))


# --- post objects -----------------------------------------------------------------------


def test_build_object__note_passes_static_checklist():
    config = make_config()
    urls = Urls(config)

    note = build_object(config, make_post())

    served_at(note, "https://blog.example/ap/posts/hello", urls)
    assert note["type"] == "Note"
    assert note["attributedTo"] == urls.actor()
    assert urlsplit(note["id"]).netloc == urlsplit(urls.actor()).netloc
    assert note["to"] == [PUBLIC]
    assert note["cc"] == ["https://blog.example/ap/followers"]
    assert note["published"] == "2026-11-28T12:00:00Z"
    assert note["url"] == "https://blog.example/posts/hello/"
    assert note["replies"] == "https://blog.example/ap/replies/hello"
    assert note["contentMap"] == {"en": note["content"]}
    assert note["sensitive"] is False
    assert "updated" not in note
    assert "summary" not in note
    assert "name" not in note


def test_build_object__note_content_has_title_body_permalink_and_hashtags():
    post = make_post(tags=(Tag("intro", "intro"), Tag("Python", "python")))

    note = build_object(make_config(), post)

    permalink = "https://blog.example/posts/hello/"
    assert note["content"] == (
        "<p><strong>Hello world</strong></p>"
        "<p>First paragraph.</p>"
        f'<p><a href="{permalink}">{permalink}</a></p>'
        '<p><a href="https://blog.example/tags/intro/" class="mention hashtag" rel="tag">'
        "#<span>intro</span></a> "
        '<a href="https://blog.example/tags/python/" class="mention hashtag" rel="tag">'
        "#<span>Python</span></a></p>"
    )
    assert note["tag"] == [
        {"type": "Hashtag", "name": "#intro", "href": "https://blog.example/tags/intro/"},
        {"type": "Hashtag", "name": "#Python", "href": "https://blog.example/tags/python/"},
    ]


def test_build_object__title_is_escaped_and_relative_links_made_absolute():
    post = make_post(
        title="Tom & <Jerry>",
        content='<p><a href="/posts/other/">other</a> <a href="#fn1">1</a>'
        ' <a href="mailto:me@blog.example">mail</a></p>',
    )

    content = build_object(make_config(), post)["content"]

    assert content.startswith("<p><strong>Tom &amp; &lt;Jerry&gt;</strong></p>")
    assert '<a href="https://blog.example/posts/other/">other</a>' in content
    assert '<a href="https://blog.example/posts/hello/#fn1">1</a>' in content
    assert '<a href="mailto:me@blog.example">mail</a>' in content


def test_build_object__tags_without_a_letter_are_skipped():
    post = make_post(
        tags=(Tag("2026", "2026"), Tag("machine learning", "machine-learning"), Tag("100", "100"))
    )

    note = build_object(make_config(), post)

    assert [t["name"] for t in note["tag"]] == ["#machinelearning"]
    assert "#<span>2026</span>" not in note["content"]
    assert "#<span>machinelearning</span>" in note["content"]


def test_build_object__no_hashtag_paragraph_without_tags():
    note = build_object(make_config(), make_post(tags=()))

    assert note["tag"] == []
    assert "hashtag" not in note["content"]


@pytest.mark.parametrize(
    ("site_type", "post_type"), [("Article", ""), ("Note", "Article")], ids=["site", "post"]
)
def test_build_object__article_has_name_url_and_titled_content(site_type, post_type):
    config = make_config(post_type=site_type)
    post = make_post(post_type=post_type, content="<p>Full text.</p>", image="cover.jpg")

    article = build_object(config, post)

    served_at(article, "https://blog.example/ap/posts/hello", Urls(config))
    assert article["type"] == "Article"
    assert article["name"] == "Hello world"
    # GoToSocial and Misskey show `summary` as a content warning over the body: an Article
    # without a warning has none, and its title leads the content they show.
    assert "summary" not in article
    assert article["url"] == "https://blog.example/posts/hello/"
    assert article["content"].startswith("<p><strong>Hello world</strong></p><p>Full text.</p>")
    assert "#<span>intro</span>" in article["content"]
    assert article["attachment"] == []


def test_build_object__article_summary_is_only_a_real_warning():
    post = make_post(post_type="Article", content_warning="spoilers")
    article = build_object(make_config(), post)
    assert article["summary"] == "spoilers" and article["sensitive"] is True
    assert article["content"].startswith("<p><strong>Hello world</strong></p>")


def test_build_object__inline_images_become_attachments_without_empty_paragraphs():
    content = (
        '<p>Before.</p>\n<p><img loading="lazy" src="loaf.png" alt="A round loaf" /></p>\n'
        '<p><a href="big.jpg"><img src="small.jpg" alt="Zoom"></a></p>\n'
        '<p>Text <img src="/img/diagram.svg" alt="A diagram"> inline.</p>\n<p>After.</p>'
    )
    note = build_object(make_config(), make_post(content=content, image="cover.jpg"))

    attachments = [(a["url"], a["name"]) for a in note["attachment"]]
    assert attachments == [
        ("https://blog.example/posts/hello/cover.jpg", ""),
        ("https://blog.example/posts/hello/loaf.png", "A round loaf"),
        ("https://blog.example/posts/hello/small.jpg", "Zoom"),
    ]
    assert "<img" not in note["content"] and "<p></p>" not in note["content"]
    assert "<p>Before.</p>\n<p>Text " in note["content"]
    # An SVG cannot be attached (Mastodon stores no SVG): it stays reachable as a link.
    assert '<a href="https://blog.example/img/diagram.svg">A diagram</a>' in note["content"]


def test_build_object__images_in_an_article_become_links():
    content = '<p><img src="loaf.png" alt="A round loaf"></p>'
    article = build_object(make_config(), make_post(post_type="Article", content=content))
    assert article["attachment"] == []
    assert (
        '<a href="https://blog.example/posts/hello/loaf.png">A round loaf</a>'
        in (article["content"])
    )


def test_build_object__task_boxes_stay_visible():
    content = (
        '<ul class="contains-task-list">\n<li class="task-list-item"><input '
        'class="task-list-item-checkbox" checked="checked" disabled="disabled" type="checkbox">'
        ' Done</li>\n<li class="task-list-item"><input class="task-list-item-checkbox" '
        'disabled="disabled" type="checkbox"> To do</li>\n</ul>'
    )
    note = build_object(make_config(), make_post(content=content))
    assert "<input" not in note["content"]
    assert "☑ Done</li>" in note["content"] and "☐ To do</li>" in note["content"]


def test_build_object__edited_is_the_updated_time():
    edited = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    note = build_object(make_config(), make_post(), edited=edited)
    assert note["updated"] == "2024-06-01T08:00:00Z"
    later = make_post(updated=datetime(2024, 7, 1, tzinfo=UTC))
    assert build_object(make_config(), later, edited=edited)["updated"] == "2024-07-01T00:00:00Z"


def test_build_object__post_note_overrides_article_site():
    note = build_object(make_config(post_type="Article"), make_post(post_type="Note"))

    assert note["type"] == "Note"
    assert "name" not in note


def test_build_object__attachments_capped_at_four_with_media_type_and_name():
    post = make_post(
        image="cover.jpg",
        image_alt="A sunrise",
        images=(
            ("cover.jpg", "duplicate of the cover"),
            ("/img/diagram.svg", "Mastodon cannot store SVG"),
            ("b.PNG", ""),
            ("https://cdn.example/c.webp", "C"),
            ("../d.gif", "D"),
            ("e.avif", "E"),
        ),
    )

    attachments = build_object(make_config(), post)["attachment"]

    assert attachments == [
        {
            "type": "Image",
            "mediaType": "image/jpeg",
            "url": "https://blog.example/posts/hello/cover.jpg",
            "name": "A sunrise",
        },
        {
            "type": "Image",
            "mediaType": "image/png",
            "url": "https://blog.example/posts/hello/b.PNG",
            "name": "",
        },
        {
            "type": "Image",
            "mediaType": "image/webp",
            "url": "https://cdn.example/c.webp",
            "name": "C",
        },
        {
            "type": "Image",
            "mediaType": "image/gif",
            "url": "https://blog.example/posts/d.gif",
            "name": "D",
        },
    ]


def test_build_object__content_warning_sets_summary_and_sensitive():
    note = build_object(make_config(), make_post(content_warning="Spoilers", sensitive=False))

    assert note["summary"] == "Spoilers"
    assert note["sensitive"] is True


def test_build_object__content_warning_on_article_replaces_the_excerpt():
    article = build_object(make_config(), make_post(post_type="Article", content_warning="Gore"))

    assert article["summary"] == "Gore"
    assert article["sensitive"] is True


@pytest.mark.parametrize(
    ("site", "post", "expected"),
    [(False, None, False), (True, None, True), (True, False, False), (False, True, True)],
)
def test_build_object__sensitive_flag_post_else_site(site, post, expected):
    note = build_object(make_config(sensitive=site), make_post(sensitive=post))

    assert note["sensitive"] is expected
    assert "summary" not in note


def test_build_object__updated_only_when_the_post_has_it():
    edited = make_post(updated=datetime(2026, 11, 29, 8, 30, tzinfo=UTC))

    note = build_object(make_config(), edited)

    assert note["updated"] == "2026-11-29T08:30:00Z"
    assert note["published"] == "2026-11-28T12:00:00Z"


def test_build_object__version_needs_updated():
    with pytest.raises(ValueError, match="updated"):
        build_object(make_config(), make_post(), version="abc123")


def test_build_object__post_without_date():
    with pytest.raises(ValueError, match="no date"):
        build_object(make_config(), make_post(date=None))


def test_build_object__uid_decides_the_id_not_the_slug():
    post = make_post(slug="renamed", url="/posts/renamed/", uid="2024/hello")

    note = build_object(make_config(), post)

    assert note["id"] == "https://blog.example/ap/posts/2024~hello"
    assert note["replies"] == "https://blog.example/ap/replies/2024~hello"
    assert note["url"] == "https://blog.example/posts/renamed/"


# --- activities -------------------------------------------------------------------------


def test_build_create__embeds_the_full_object():
    config = make_config()
    note = build_object(config, make_post())

    create = build_create(config, note)

    assert create["id"] == "https://blog.example/ap/posts/hello#create"
    assert create["type"] == "Create"
    assert create["actor"] == "https://blog.example/ap/actor"
    assert create["published"] == note["published"]
    assert create["to"] == [PUBLIC]
    assert create["cc"] == ["https://blog.example/ap/followers"]
    assert create["@context"] == note["@context"]
    assert create["object"] == {k: v for k, v in note.items() if k != "@context"}
    assert len(json.dumps(create)) < ONE_MB


def test_build_update__new_id_per_version_and_full_object():
    config = make_config()
    post = make_post(updated=datetime(2026, 11, 29, tzinfo=UTC))
    note = build_object(config, post, version="a1b2c3")

    first = build_update(config, note, "a1b2c3")
    second = build_update(config, note, "d4e5f6")

    assert first["id"] == "https://blog.example/ap/posts/hello#update-a1b2c3"
    assert second["id"] != first["id"]
    assert first["type"] == "Update"
    assert first["actor"] == "https://blog.example/ap/actor"
    assert first["published"] == "2026-11-29T00:00:00Z"
    assert first["object"]["updated"] == "2026-11-29T00:00:00Z"
    assert first["object"]["content"] == note["content"]


def test_build_update__object_without_updated():
    config = make_config()

    with pytest.raises(ValueError, match="updated"):
        build_update(config, build_object(config, make_post()), "a1b2c3")


def test_build_tombstone__shape():
    tombstone = build_tombstone(
        "https://blog.example/ap/posts/gone", "Note", datetime(2026, 12, 1, tzinfo=UTC)
    )

    assert tombstone == {
        "@context": AS_CONTEXT,
        "id": "https://blog.example/ap/posts/gone",
        "type": "Tombstone",
        "formerType": "Note",
        "deleted": "2026-12-01T00:00:00Z",
    }


def test_build_delete__object_is_a_tombstone():
    config = make_config()
    object_id = Urls(config).post("gone")

    delete = build_delete(config, object_id, "Article", datetime(2026, 12, 1, tzinfo=UTC))

    assert delete["id"] == object_id + "#delete"
    assert delete["type"] == "Delete"
    assert delete["actor"] == "https://blog.example/ap/actor"
    assert delete["to"] == [PUBLIC]
    assert delete["object"]["id"] == object_id
    assert delete["object"]["type"] == "Tombstone"
    assert delete["object"]["formerType"] == "Article"


def test_build_move__push_form():
    move = build_move(make_config(), "https://new.example/ap/actor", 2)

    assert move == {
        "@context": AS_CONTEXT,
        "id": "https://blog.example/ap/actor#move-2",
        "type": "Move",
        "actor": "https://blog.example/ap/actor",
        "object": "https://blog.example/ap/actor",
        "target": "https://new.example/ap/actor",
        "to": ["https://blog.example/ap/followers"],
    }


@pytest.mark.parametrize("target", ["https://blog.example/ap/actor", "new@new.example"])
def test_build_move__target_not_another_actor_url(target):
    with pytest.raises(ValueError, match="target"):
        build_move(make_config(), target, 1)


def test_build_update_actor__id_follows_the_profile(public_key_pem):
    config = make_config()
    actor = actor_for(config, public_key_pem)
    renamed = actor_for(config, public_key_pem, summary_html="<p>New bio</p>")

    update = build_update_actor(config, actor)

    assert update["type"] == "Update"
    assert update["actor"] == actor["id"]
    assert update["id"].startswith(actor["id"] + "#update-")
    assert update["id"] == build_update_actor(config, actor)["id"]
    assert update["id"] != build_update_actor(config, renamed)["id"]
    assert update["@context"] == actor["@context"]
    assert update["object"]["publicKey"] == actor["publicKey"]
    assert "@context" not in update["object"]


def test_build_update_actor__foreign_actor(public_key_pem):
    actor = actor_for(make_config(), public_key_pem)

    with pytest.raises(ValueError, match="actor"):
        build_update_actor(make_config(base_url="https://other.example/"), actor)


# --- collections ------------------------------------------------------------------------


def _objects(config: Config, count: int) -> list[dict[str, Any]]:
    """`count` notes, newest first."""
    return [
        build_object(
            config,
            make_post(
                uid=f"post-{n}", url=f"/posts/post-{n}/", date=datetime(2026, 1, 1, tzinfo=UTC)
            ),
        )
        for n in range(count, 0, -1)
    ]


@pytest.mark.parametrize(("count", "page_count"), [(0, 0), (1, 1), (20, 1), (21, 2), (45, 3)])
def test_build_outbox__paging(count, page_count):
    config = make_config()
    urls = Urls(config)
    objects = _objects(config, count)

    outbox, pages = build_outbox(config, objects)

    served_at(outbox, "https://blog.example/ap/outbox", urls)
    assert outbox["type"] == "OrderedCollection"
    assert outbox["totalItems"] == count
    assert len(pages) == page_count
    if count == 0:
        assert outbox["orderedItems"] == []
        assert "first" not in outbox
    else:
        assert outbox["first"] == pages[0]["id"]
        assert outbox["last"] == pages[-1]["id"]
    for number, page in enumerate(pages, start=1):
        served_at(page, f"https://blog.example/ap/outbox-pages/{number}", urls)
        assert page["type"] == "OrderedCollectionPage"
        assert page["partOf"] == outbox["id"]
        assert page.get("prev") == (pages[number - 2]["id"] if number > 1 else None)
        assert page.get("next") == (pages[number]["id"] if number < page_count else None)
        assert 1 <= len(page["orderedItems"]) <= 20
    items = [item for page in pages for item in page["orderedItems"]]
    assert [item["object"]["id"] for item in items] == [obj["id"] for obj in objects]
    assert all(item["type"] == "Create" for item in items)
    assert all(item["id"] == item["object"]["id"] + "#create" for item in items)
    assert all("@context" not in item and "@context" not in item["object"] for item in items)


def test_build_outbox__newest_first_is_kept():
    config = make_config()
    newest = build_object(config, make_post(uid="new", date=datetime(2026, 3, 1, tzinfo=UTC)))
    oldest = build_object(config, make_post(uid="old", date=datetime(2026, 1, 1, tzinfo=UTC)))

    _, pages = build_outbox(config, [newest, oldest], page_size=1)

    assert [p["orderedItems"][0]["object"]["id"] for p in pages] == [newest["id"], oldest["id"]]


def test_build_outbox__page_size_below_one():
    with pytest.raises(ValueError, match="page_size"):
        build_outbox(make_config(), [], page_size=0)


def test_build_featured__uri_strings_inline():
    config = make_config()
    ids = [Urls(config).post("pinned"), Urls(config).post("hello")]

    featured = build_featured(config, ids)

    served_at(featured, "https://blog.example/ap/featured", Urls(config))
    assert featured["type"] == "OrderedCollection"
    assert featured["totalItems"] == 2
    assert featured["orderedItems"] == ids
    assert "first" not in featured


def test_build_followers__count_without_items():
    config = make_config()

    followers = build_followers(config, 17)
    unknown = build_followers(config, None)

    served_at(followers, "https://blog.example/ap/followers", Urls(config))
    assert followers["totalItems"] == 17
    assert "first" not in followers and "orderedItems" not in followers
    assert "totalItems" not in unknown
    assert unknown["id"] == followers["id"]


def test_build_following__empty():
    config = make_config()

    following = build_following(config)

    served_at(following, "https://blog.example/ap/following", Urls(config))
    assert following["totalItems"] == 0
    assert following["orderedItems"] == []


def test_build_replies__empty_collection_of_the_post():
    config = make_config()
    note = build_object(config, make_post(uid="2024/hello"))

    replies = build_replies(config, note["id"])

    served_at(replies, note["replies"], Urls(config))
    assert replies["totalItems"] == 0
    assert replies["first"]["orderedItems"] == []


def test_build_replies__lists_reply_ids_on_an_embedded_first_page():
    # Mastodon reads `first` and its orderedItems (fetch_replies_service.rb); GoToSocial
    # wants the first page embedded in the collection (dereferencing/thread.go).
    config = make_config()
    note = build_object(config, make_post(uid="hello"))
    ids = ["https://m.example/s/2", "https://g.example/s/1"]

    replies = build_replies(config, note["id"], ids)

    assert replies["type"] == "OrderedCollection"
    assert replies["totalItems"] == 2
    assert replies["first"] == {
        "type": "OrderedCollectionPage",
        "partOf": replies["id"],
        "orderedItems": ids,
    }


def test_with_interactions__embeds_collections_and_keeps_the_plain_object():
    config = make_config()
    note = build_object(config, make_post(uid="hello"))
    replies = build_replies(config, note["id"], ["https://m.example/s/2"])
    likes = build_reactions(config, note["id"], "Like", 1)
    shares = build_reactions(config, note["id"], "Announce", 0)

    served = with_interactions(note, replies, likes, shares)

    assert served["replies"]["first"]["orderedItems"] == ["https://m.example/s/2"]
    assert "@context" not in served["replies"]
    assert served["likes"] == {"id": likes["id"], "type": "OrderedCollection", "totalItems": 1}
    assert served["shares"]["totalItems"] == 0
    assert likes["id"] == "https://blog.example/ap/likes/hello"
    assert note["replies"] == replies["id"]  # the object as sent is untouched
    assert "likes" not in note


def test_build_replies__foreign_object_id():
    with pytest.raises(ValueError, match="not a post object id"):
        build_replies(make_config(), "https://other.example/ap/posts/hello")


def test_builders__return_fresh_contexts(public_key_pem):
    config = make_config()
    first = actor_for(config, public_key_pem)
    first["@context"][3]["toot"] = "changed"
    note = build_object(config, make_post())
    note["@context"][1]["Hashtag"] = "changed"

    assert actor_for(config, public_key_pem)["@context"][3]["toot"] == (
        "http://joinmastodon.org/ns#"
    )
    assert build_object(config, make_post())["@context"][1]["Hashtag"] == "as:Hashtag"


def test_build_object__other_language_and_sub_path_site():
    config = make_config(base_url="https://example.org/blog/", language="fr")
    post = make_post(image="cover.jpg")

    note = build_object(config, post)

    assert note["id"] == "https://example.org/blog/ap/posts/hello"
    assert note["url"] == "https://example.org/blog/posts/hello/"
    assert note["attachment"][0]["url"] == "https://example.org/blog/posts/hello/cover.jpg"
    assert list(note["contentMap"]) == ["fr"]
    assert Urls(config).output_path(note["id"]) == "ap/posts/hello"


def test_build_actor__matrix_address_as_a_profile_field(public_key_pem):
    config = dataclasses.replace(
        make_config(fields=(ProfileField("Website", "https://blog.example/"),)),
        matrix=MatrixConfig(address="@mara:example.org"),
    )

    fields = actor_for(config, public_key_pem)["attachment"]

    assert [f["name"] for f in fields] == ["Website", "Matrix"]
    assert fields[1]["value"] == (
        '<a href="https://matrix.to/#/%40mara%3Aexample.org" rel="nofollow noopener noreferrer" '
        'target="_blank">@mara:example.org</a>'
    )


def test_build_actor__own_matrix_field_wins(public_key_pem):
    config = dataclasses.replace(
        make_config(fields=(ProfileField("matrix", "@other:example.org"),)),
        matrix=MatrixConfig(address="@mara:example.org"),
    )

    fields = actor_for(config, public_key_pem)["attachment"]

    assert fields == [{"type": "PropertyValue", "name": "matrix", "value": "@other:example.org"}]
