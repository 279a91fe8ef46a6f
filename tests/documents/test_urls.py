from __future__ import annotations

import pytest

from fedipress.config import Config, FediverseConfig
from fedipress.documents.urls import Urls


def _urls(base_url: str = "https://blog.example/", **fediverse: object) -> Urls:
    return Urls(
        Config.for_test(base_url=base_url, fediverse=FediverseConfig(username="blog", **fediverse))
    )


def test_urls__layout():
    urls = _urls()

    assert urls.actor() == "https://blog.example/ap/actor"
    assert urls.key_id() == "https://blog.example/ap/actor#main-key"
    assert urls.inbox() == "https://blog.example/ap/inbox"
    assert urls.shared_inbox() == urls.inbox()
    assert urls.outbox() == "https://blog.example/ap/outbox"
    assert urls.outbox_page(2) == "https://blog.example/ap/outbox-pages/2"
    assert urls.followers() == "https://blog.example/ap/followers"
    assert urls.following() == "https://blog.example/ap/following"
    assert urls.featured() == "https://blog.example/ap/featured"
    assert urls.post("hello") == "https://blog.example/ap/posts/hello"
    assert urls.replies("hello") == "https://blog.example/ap/replies/hello"
    assert urls.create(urls.post("hello")) == "https://blog.example/ap/posts/hello#create"
    assert urls.update(urls.post("a"), "3f2a9c") == "https://blog.example/ap/posts/a#update-3f2a9c"
    assert urls.delete(urls.post("a")) == "https://blog.example/ap/posts/a#delete"
    assert urls.move(1) == "https://blog.example/ap/actor#move-1"
    assert urls.webfinger() == "https://blog.example/.well-known/webfinger"
    assert urls.nodeinfo_discovery() == "https://blog.example/.well-known/nodeinfo"
    assert urls.nodeinfo("2.1") == "https://blog.example/nodeinfo/2.1"
    assert urls.nodeinfo("2.0") == "https://blog.example/nodeinfo/2.0"
    assert urls.host_meta() == "https://blog.example/.well-known/host-meta"
    assert urls.handle() == "blog@blog.example"


def test_urls__inbox_on_another_host_is_kept_verbatim():
    urls = _urls(inbox="https://inbox.example.net/fn/blog")

    assert urls.inbox() == "https://inbox.example.net/fn/blog"
    assert urls.shared_inbox() == "https://inbox.example.net/fn/blog"


def test_urls__sub_path_site_keeps_well_known_at_host_root():
    urls = _urls("https://example.org/blog/")

    assert urls.actor() == "https://example.org/blog/ap/actor"
    assert urls.nodeinfo() == "https://example.org/blog/nodeinfo/2.1"
    assert urls.webfinger() == "https://example.org/.well-known/webfinger"
    assert urls.output_path(urls.actor()) == "ap/actor"
    assert urls.output_path(urls.webfinger()) == ".well-known/webfinger"


def test_urls__uid_with_slash_and_non_ascii_letters():
    urls = _urls()

    object_id = urls.post("2024/café")

    assert object_id == "https://blog.example/ap/posts/2024~caf%C3%A9"
    assert urls.uid_of(object_id) == "2024/café"
    assert urls.output_path(object_id) == "ap/posts/2024~café"


def test_urls__no_id_is_a_directory_of_another():
    urls = _urls()
    uids = ["2024", "2024/hello", "2024/hello/part-2", "hello", "outbox"]
    ids = [
        urls.actor(),
        urls.key_id(),
        urls.outbox(),
        *(urls.outbox_page(n) for n in range(1, 4)),
        urls.followers(),
        urls.following(),
        urls.featured(),
        *(urls.post(uid) for uid in uids),
        *(urls.replies(uid) for uid in uids),
        urls.webfinger(),
        urls.nodeinfo_discovery(),
        urls.host_meta(),
        urls.nodeinfo("2.1"),
        urls.nodeinfo("2.0"),
    ]

    paths = {urls.output_path(url) for url in ids}

    assert "ap/outbox" in paths and "ap/outbox-pages/1" in paths
    clashes = [(a, b) for a in paths for b in paths if b.startswith(a + "/")]
    assert clashes == []


def test_output_path__maps_urls_to_files():
    urls = _urls()

    assert urls.output_path("https://blog.example/ap/actor#main-key") == "ap/actor"
    assert urls.output_path(urls.outbox_page(3)) == "ap/outbox-pages/3"
    assert urls.output_path(urls.home()) == "index.html"
    assert urls.output_path("https://blog.example/posts/hello/") == "posts/hello/index.html"
    assert urls.output_path(urls.nodeinfo_discovery()) == ".well-known/nodeinfo"


@pytest.mark.parametrize(
    "url",
    [
        "https://other.example/ap/actor",
        "https://inbox.example.net/fn/blog",
        "https://blog.example/ap/actor?x=1",
        "https://blog.example/ap/../secret",
        "https://blog.example//ap/actor",
    ],
)
def test_output_path__url_not_served_by_the_site(url):
    with pytest.raises(ValueError):
        _urls().output_path(url)


@pytest.mark.parametrize("version", ["", "a b", "x" * 65, "1#2"])
def test_urls_update__bad_version(version):
    urls = _urls()

    with pytest.raises(ValueError, match="version"):
        urls.update(urls.post("hello"), version)


def test_urls_uid_of__foreign_id():
    with pytest.raises(ValueError, match="not a post object id"):
        _urls().uid_of("https://blog.example/ap/actor")


def test_urls_handle__site_without_fediverse_section():
    with pytest.raises(ValueError, match="fediverse"):
        Urls(Config.for_test()).handle()
