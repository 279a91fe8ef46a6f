"""Topic accounts in the pure layers (FEDERATION.md §13): their URLs, actor, Announces and
outbox, WebFinger for each account, which posts they carry, and the host rules."""

from __future__ import annotations

import pytest

from fedipress.config import Config, FediverseConfig, ProfileField, TopicAccount
from fedipress.documents import activitypub as ap
from fedipress.documents.post import Tag
from fedipress.documents.topics import accounts_for_tag, matches
from fedipress.documents.urls import Urls, dynamic_paths
from fedipress.documents.webfinger import jrd_for_resource
from fedipress.hosting import header_rules, headers_for, match_redirect, redirect_rules

BLOG = "https://blog.example"
RUST = TopicAccount("rust", ("Rust",), summary="Rust only.")
BREAD = TopicAccount("bread", ("bread", "sourdough"), display_name="Bread", avatar="/bread.png")
CONFIG = Config.for_test(
    fediverse=FediverseConfig(
        username="blog",
        avatar="/me.png",
        fields=(ProfileField("Code", "https://forge.example/me"),),
        accounts=(RUST, BREAD),
        inbox_proxy="https://fn.example",
    )
)
PEM = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"


def actor(account: str = "") -> dict[str, object]:
    from datetime import UTC, datetime

    return ap.build_actor(
        CONFIG,
        PEM,
        published=datetime(2025, 1, 1, tzinfo=UTC),
        summary_html="<p>Hi.</p>",
        avatar_url="/me.png",
        header_url=None,
        account=account,
    )


def test_urls__topic_accounts_live_under_ap_topics_and_the_main_ones_stay() -> None:
    main, rust = Urls(CONFIG), Urls(CONFIG).for_account("rust")
    assert (main.actor(), main.outbox(), main.followers()) == (
        f"{BLOG}/ap/actor",
        f"{BLOG}/ap/outbox",
        f"{BLOG}/ap/followers",
    )
    assert rust.actor() == f"{BLOG}/ap/topics/rust/actor"
    assert rust.key_id() == f"{BLOG}/ap/topics/rust/actor#main-key"
    assert rust.outbox_page(2) == f"{BLOG}/ap/topics/rust/outbox-pages/2"
    assert rust.followers() == f"{BLOG}/ap/topics/rust/followers"
    assert rust.announce("2024/hi") == f"{BLOG}/ap/topics/rust/announces/2024~hi"
    assert rust.handle() == "rust@blog.example"
    # posts and the inbox are the site's, whichever account asks
    assert rust.post("x") == main.post("x") and rust.inbox() == main.inbox()
    assert main.account_of(rust.actor()) == "rust" and main.account_of(main.actor()) == ""
    assert main.account_of(f"{BLOG}/ap/topics/nope/actor") is None
    with pytest.raises(KeyError):
        main.for_account("nope")
    with pytest.raises(ValueError):
        main.announce("x")
    assert dynamic_paths(CONFIG)[-2:] == ("/ap/topics/rust/followers", "/ap/topics/bread/followers")


def test_actor__a_topic_account_links_back_and_the_main_one_lists_them() -> None:
    rust, main = actor("rust"), actor()
    assert rust["id"] == f"{BLOG}/ap/topics/rust/actor"
    assert (rust["preferredUsername"], rust["webfinger"]) == ("rust", "rust@blog.example")
    assert rust["name"] == "Test Blog: #Rust"
    assert rust["url"] == f"{BLOG}/tags/rust/"  # the page of its first tag, same host
    assert rust["inbox"] == main["inbox"] == f"{BLOG}/ap/inbox"
    assert rust["publicKey"] == {
        "id": f"{BLOG}/ap/topics/rust/actor#main-key",
        "owner": f"{BLOG}/ap/topics/rust/actor",
        "publicKeyPem": PEM,
    }
    assert "featured" not in rust and "attributionDomains" not in rust
    assert [f["name"] for f in rust["attachment"]] == ["Blog", "Author"]  # type: ignore[union-attr]
    assert "@blog@blog.example" in str(rust["attachment"])
    assert str(rust["summary"]).startswith("<p>Hi.</p><p>Posts tagged")
    assert f'href="{BLOG}/tags/rust/"' in str(rust["summary"])
    # The main actor names both topic accounts in its summary, and keeps its own fields
    assert "@<span>rust</span>" in str(main["summary"]) and "@<span>bread</span>" in str(
        main["summary"]
    )
    assert [f["name"] for f in main["attachment"]] == ["Code"]  # type: ignore[union-attr]
    assert actor("bread")["name"] == "Bread"


def test_announce_undo_and_outbox__of_a_topic_account() -> None:
    obj = {"id": f"{BLOG}/ap/posts/hi", "published": "2025-01-02T00:00:00Z"}
    announce = ap.build_announce(CONFIG, "rust", obj["id"], obj["published"])
    assert announce == {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{BLOG}/ap/topics/rust/announces/hi",
        "type": "Announce",
        "actor": f"{BLOG}/ap/topics/rust/actor",
        "published": "2025-01-02T00:00:00Z",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [f"{BLOG}/ap/actor", f"{BLOG}/ap/topics/rust/followers"],
        "object": obj["id"],
    }
    undo = ap.build_undo(announce)
    assert (undo["id"], undo["actor"], undo["type"]) == (
        f"{BLOG}/ap/topics/rust/announces/hi#undo",
        f"{BLOG}/ap/topics/rust/actor",
        "Undo",
    )
    assert undo["object"]["id"] == announce["id"] and "@context" not in undo["object"]
    page = ap.build_outbox_page(CONFIG, [obj], 1, 1, "rust")
    assert page["id"] == f"{BLOG}/ap/topics/rust/outbox-pages/1"
    assert page["partOf"] == f"{BLOG}/ap/topics/rust/outbox"
    assert [item["type"] for item in page["orderedItems"]] == ["Announce"]
    assert ap.build_outbox_collection(CONFIG, 1, 1, "rust")["first"] == page["id"]


def test_update_actor__of_any_account_and_move_of_a_topic_account() -> None:
    update = ap.build_update_actor(CONFIG, actor("rust"))
    assert update["actor"] == f"{BLOG}/ap/topics/rust/actor"
    assert update["id"].startswith(f"{BLOG}/ap/topics/rust/actor#update-")
    assert update["cc"] == [f"{BLOG}/ap/topics/rust/followers"]
    with pytest.raises(ValueError):
        ap.build_update_actor(CONFIG, {**actor(), "id": "https://other.example/actor"})
    move = ap.build_move(CONFIG, "https://new.example/users/rust", 7, "rust")
    assert move["actor"] == move["object"] == f"{BLOG}/ap/topics/rust/actor"
    assert move["to"] == [f"{BLOG}/ap/topics/rust/followers"]
    # A profile change is a new version; the actor's `published` alone is not
    changed = {**actor("rust"), "name": "Crabs"}
    assert ap.actor_version(changed) != ap.actor_version(actor("rust"))
    assert ap.actor_version({**actor("rust"), "published": "2030-01-01T00:00:00Z"}) == (
        ap.actor_version(actor("rust"))
    )


@pytest.mark.parametrize(
    ("resource", "subject"),
    [
        ("acct:rust@blog.example", "acct:rust@blog.example"),
        ("acct:BREAD@blog.example", "acct:bread@blog.example"),
        (f"{BLOG}/ap/topics/rust/actor", "acct:rust@blog.example"),
        (f"{BLOG}/tags/bread/", "acct:bread@blog.example"),
        ("acct:blog@blog.example", "acct:blog@blog.example"),
        (f"{BLOG}/", "acct:blog@blog.example"),
    ],
)
def test_webfinger__each_account_by_handle_or_url(resource: str, subject: str) -> None:
    status, jrd = jrd_for_resource(CONFIG, resource)
    assert status == 200 and jrd is not None
    assert jrd["subject"] == subject
    account = subject.removeprefix("acct:").split("@")[0]
    expected = Urls(CONFIG).actor() if account == "blog" else Urls(CONFIG, account).actor()
    assert [link["href"] for link in jrd["links"] if link["rel"] == "self"] == [expected]


def test_webfinger__another_account_is_404() -> None:
    assert jrd_for_resource(CONFIG, "acct:nobody@blog.example") == (404, None)


def test_topics__match_by_tag_slug() -> None:
    assert matches(RUST, [Tag("rust", "rust")]) and matches(BREAD, [Tag("Sourdough", "sourdough")])
    assert not matches(RUST, [Tag("rusty", "rusty")])
    assert [a.username for a in accounts_for_tag(CONFIG, Tag("RUST", "rust"))] == ["rust"]


def test_hosting__topic_followers_and_webfinger_go_to_the_inbox() -> None:
    rules = redirect_rules(CONFIG)
    for path in ("/ap/topics/rust/followers", "/.well-known/webfinger", "/ap/inbox"):
        found = match_redirect(path, rules, file_exists=True)
        assert found is not None and found[1] == "https://fn.example" + path
    assert match_redirect("/ap/topics/rust/actor", rules, file_exists=True) is None
    headers = dict(headers_for("/ap/topics/rust/actor", header_rules(CONFIG)))
    assert headers["Content-Type"] == "application/activity+json"
    assert headers["Cache-Control"] == "public, max-age=300"
    # Without topic accounts WebFinger stays the static file
    plain = Config.for_test(fediverse=FediverseConfig("blog", inbox_proxy="https://fn.example"))
    assert match_redirect("/.well-known/webfinger", redirect_rules(plain), True) is None
