"""NodeInfo 2.1 / 2.0 documents and the content types the host rules serve them with.

Pure: no I/O. Mastodon does not read NodeInfo, but Misskey does for instance metadata
(FetchInstanceMetadataService.ts), and FEP-f1d5 says fediverse software SHOULD serve it
(FEDERATION.md §9).
"""

from __future__ import annotations

from typing import Literal

from fedipress import __version__
from fedipress.config import Config
from fedipress.documents.media import JSONObject
from fedipress.documents.urls import Urls

__all__ = ["HOMEPAGE", "SOFTWARE_NAME", "build_nodeinfo", "build_nodeinfo_discovery"]

SchemaVersion = Literal["2.1", "2.0"]

SOFTWARE_NAME = "fedipress"  # schema: ^[a-z0-9-]+$
HOMEPAGE = "https://pypi.org/project/fedipress/"
_SCHEMA_REL = "http://nodeinfo.diaspora.software/ns/schema/"


def build_nodeinfo_discovery(config: Config) -> JSONObject:
    """The JRD at `/.well-known/nodeinfo`. 2.1 comes first: Misskey takes the first link it
    knows, preferring 2.1, then 2.0 (FetchInstanceMetadataService.ts)."""
    urls = Urls(config)
    return {
        "links": [
            {"rel": _SCHEMA_REL + version, "href": urls.nodeinfo(version)}
            for version in ("2.1", "2.0")
        ]
    }


def build_nodeinfo(
    config: Config,
    *,
    local_posts: int,
    active_month: int = 1,
    active_halfyear: int = 1,
    schema: SchemaVersion = "2.1",
) -> JSONObject:
    """The NodeInfo document at `/nodeinfo/<schema>`, with every key the schema requires.

    The blog is one user; `active_month` / `active_halfyear` (0 or 1) say whether it posted
    in that period, which the caller knows and this pure function cannot.
    """
    software: JSONObject = {"name": SOFTWARE_NAME, "version": __version__}
    if schema == "2.1":
        software["homepage"] = HOMEPAGE  # added in 2.1; the 2.0 schema forbids extra keys
    metadata: JSONObject = {"nodeName": config.title}
    if config.description:
        metadata["nodeDescription"] = config.description
    return {
        "version": schema,
        "software": software,
        "protocols": ["activitypub"],
        # The site always renders an Atom feed (content/feeds.py).
        "services": {"inbound": [], "outbound": ["atom1.0"]},
        "openRegistrations": False,
        "usage": {
            "users": {
                "total": 1,
                "activeMonth": active_month,
                "activeHalfyear": active_halfyear,
            },
            "localPosts": local_posts,
        },
        "metadata": metadata,
    }
