from __future__ import annotations

import re

import pytest

import fedipress
from fedipress.config import Config, FediverseConfig
from fedipress.documents.media import (
    AP_MEDIA_TYPE,
    JRD_MEDIA_TYPE,
    NODEINFO_20_MEDIA_TYPE,
    NODEINFO_21_MEDIA_TYPE,
)
from fedipress.documents.nodeinfo import (
    build_nodeinfo,
    build_nodeinfo_discovery,
)
from fedipress.documents.urls import Urls

CONFIG = Config.for_test(description="Notes on things", fediverse=FediverseConfig(username="blog"))
# From jhass/nodeinfo schemas/2.1/schema.json (the 2.0 schema has the same top level).
REQUIRED = {
    "version",
    "software",
    "protocols",
    "services",
    "openRegistrations",
    "usage",
    "metadata",
}
OUTBOUND_SERVICES = {"atom1.0", "rss2.0", "smtp", "wordpress", "xmpp"}  # a subset of the enum


def test_build_nodeinfo_discovery__links_2_1_then_2_0():
    discovery = build_nodeinfo_discovery(CONFIG)

    assert discovery == {
        "links": [
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": "https://blog.example/nodeinfo/2.1",
            },
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                "href": "https://blog.example/nodeinfo/2.0",
            },
        ]
    }
    urls = Urls(CONFIG)
    assert [urls.output_path(link["href"]) for link in discovery["links"]] == [
        "nodeinfo/2.1",
        "nodeinfo/2.0",
    ]


@pytest.mark.parametrize("schema", ["2.1", "2.0"])
def test_build_nodeinfo__schema_required_keys(schema):
    info = build_nodeinfo(CONFIG, local_posts=42, active_month=0, schema=schema)

    assert set(info) == REQUIRED
    assert info["version"] == schema
    assert re.fullmatch(r"^[a-z0-9-]+$", info["software"]["name"])
    assert info["software"]["name"] == "fedipress"
    assert info["software"]["version"] == fedipress.__version__
    assert info["protocols"] == ["activitypub"]
    assert info["services"]["inbound"] == []
    assert set(info["services"]["outbound"]) <= OUTBOUND_SERVICES
    assert info["openRegistrations"] is False
    assert info["usage"] == {
        "users": {"total": 1, "activeMonth": 0, "activeHalfyear": 1},
        "localPosts": 42,
    }
    assert info["metadata"] == {"nodeName": "Test Blog", "nodeDescription": "Notes on things"}


def test_build_nodeinfo__homepage_only_in_2_1():
    # The 2.0 schema sets additionalProperties: false on `software`.
    assert build_nodeinfo(CONFIG, local_posts=0)["software"]["homepage"].startswith("https://")
    assert set(build_nodeinfo(CONFIG, local_posts=0, schema="2.0")["software"]) == {
        "name",
        "version",
    }


def test_build_nodeinfo__no_description():
    info = build_nodeinfo(Config.for_test(), local_posts=0)

    assert info["metadata"] == {"nodeName": "Test Blog"}


def test_media_types__exact_strings_the_host_rules_serve():
    assert AP_MEDIA_TYPE == "application/activity+json"
    assert JRD_MEDIA_TYPE == "application/jrd+json"
    assert NODEINFO_21_MEDIA_TYPE == (
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
    )
    assert NODEINFO_20_MEDIA_TYPE == (
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.0#"'
    )
