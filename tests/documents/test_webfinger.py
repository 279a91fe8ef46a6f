from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from fedipress.config import Config, FediverseConfig
from fedipress.documents.activitypub import build_actor
from fedipress.documents.media import AP_MEDIA_TYPE
from fedipress.documents.urls import Urls
from fedipress.documents.webfinger import (
    PROFILE_PAGE_REL,
    build_jrd,
    jrd_for_resource,
    parse_resource,
    render_host_meta,
)

CONFIG = Config.for_test(fediverse=FediverseConfig(username="blog"))


def test_build_jrd__subject_and_self_link_loop_back_to_the_actor():
    actor = build_actor(
        CONFIG,
        "PEM",
        published=datetime(2026, 1, 1, tzinfo=UTC),
        summary_html="",
        avatar_url=None,
        header_url=None,
    )

    jrd = build_jrd(CONFIG)

    assert jrd["subject"] == "acct:blog@blog.example"
    assert jrd["subject"] == f"acct:{actor['preferredUsername']}@blog.example"
    assert jrd["subject"] == f"acct:{actor['webfinger']}"
    self_links = [link for link in jrd["links"] if link["rel"] == "self"]
    assert self_links == [{"rel": "self", "type": AP_MEDIA_TYPE, "href": actor["id"]}]
    assert self_links[0]["href"].encode() == actor["id"].encode()
    assert len(json.dumps(jrd)) < 1024 * 1024


def test_build_jrd__aliases_and_profile_page_without_subscribe():
    jrd = build_jrd(CONFIG)

    assert jrd["aliases"] == ["https://blog.example/ap/actor", "https://blog.example/"]
    assert {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": "https://blog.example/"} in (
        jrd["links"]
    )
    assert [link["rel"] for link in jrd["links"]] == ["self", PROFILE_PAGE_REL]


def test_build_jrd__site_without_fediverse_section():
    with pytest.raises(ValueError, match="fediverse"):
        build_jrd(Config.for_test())


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("acct:blog@blog.example", ("acct", "blog@blog.example")),
        ("ACCT:Blog@Blog.Example", ("acct", "blog@blog.example")),
        ("blog@blog.example", ("acct", "blog@blog.example")),
        ("acct:@blog@blog.example", ("acct", "blog@blog.example")),
        ("acct:my%2Eblog@blog.example", ("acct", "my.blog@blog.example")),
        ("https://blog.example/ap/actor", ("url", "https://blog.example/ap/actor")),
        ("HTTPS://Blog.Example/ap/actor#main-key", ("url", "https://blog.example/ap/actor")),
        ("https://blog.example", ("url", "https://blog.example/")),
    ],
)
def test_parse_resource__accepted_forms(resource, expected):
    assert parse_resource(resource) == expected


@pytest.mark.parametrize(
    "resource",
    [
        "",
        "   ",
        "acct:",
        "acct:blog",
        "acct:@blog.example",
        "acct:blog@",
        "acct:a@b@c",
        "acct:my blog@blog.example",
        "mailto:blog@blog.example",
        "https://",
        "blog.example",
    ],
)
def test_parse_resource__malformed(resource):
    assert parse_resource(resource) is None


@pytest.mark.parametrize(
    "resource",
    [
        "acct:blog@blog.example",
        "acct:BLOG@BLOG.EXAMPLE",
        "https://blog.example/ap/actor",
        "https://blog.example/",
    ],
)
def test_jrd_for_resource__ours(resource):
    status, body = jrd_for_resource(CONFIG, resource)

    assert status == 200
    assert body == build_jrd(CONFIG)


@pytest.mark.parametrize(
    "resource",
    [
        "acct:other@blog.example",
        "acct:blog@other.example",
        "https://blog.example/ap/followers",
        "https://other.example/ap/actor",
    ],
)
def test_jrd_for_resource__another_account(resource):
    assert jrd_for_resource(CONFIG, resource) == (404, None)


@pytest.mark.parametrize("resource", [None, "", "acct:blog", "x y"])
def test_jrd_for_resource__missing_or_malformed(resource):
    assert jrd_for_resource(CONFIG, resource) == (400, None)


def test_render_host_meta__lrdd_template_points_at_webfinger():
    config = Config.for_test(
        base_url="https://example.org/blog/", fediverse=FediverseConfig(username="blog")
    )

    xrd = render_host_meta(config)

    assert xrd.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xrd.encode("utf-8"))
    assert root.tag == "{http://docs.oasis-open.org/ns/xri/xrd-1.0}XRD"
    (link,) = root
    assert link.attrib == {
        "rel": "lrdd",
        "template": "https://example.org/.well-known/webfinger?resource={uri}",
    }
    assert Urls(config).output_path(Urls(config).host_meta()) == ".well-known/host-meta"
