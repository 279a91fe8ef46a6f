"""The one home of the federation's media types, JSON-LD names and JSON alias. Pure."""

from __future__ import annotations

from typing import Any

# A parsed or built JSON object. Remote documents are untrusted: check each value's type.
JSONObject = dict[str, Any]

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

# Mastodon ignores documents served with any other type, `application/json` included
# (json_ld_helper.rb `valid_activitypub_content_type?`, since 4.2.7; FEDERATION.md §2.1 item 2).
AP_MEDIA_TYPE = "application/activity+json"
LD_MEDIA_TYPE = f'application/ld+json; profile="{AS_CONTEXT}"'
# What a GET for an ActivityPub document asks for (Mastodon sends the same pair).
AP_ACCEPT = f"{AP_MEDIA_TYPE}, {LD_MEDIA_TYPE}"
# The two Accept headers Mastodon fetches documents with: json_ld_helper.rb `build_request`
# (actors, keys, collections), and FetchResourceService (a URL pasted into search), which
# also takes HTML to find a `rel=alternate` link (FEDERATION.md §5.8).
MASTODON_ACCEPTS = (
    f"{AP_MEDIA_TYPE}, application/ld+json",
    f"{AP_MEDIA_TYPE}, {LD_MEDIA_TYPE}, text/html;q=0.1",
)
JRD_MEDIA_TYPE = "application/jrd+json"
# What a WebFinger GET asks for (Mastodon's webfinger.rb sends the same pair).
JRD_ACCEPT = f"{JRD_MEDIA_TYPE}, application/json"
XRD_MEDIA_TYPE = "application/xrd+xml"
# The recommended types of NodeInfo's PROTOCOL.md; the discovery document is plain JSON.
NODEINFO_21_MEDIA_TYPE = (
    'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
)
NODEINFO_20_MEDIA_TYPE = (
    'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.0#"'
)
NODEINFO_DISCOVERY_MEDIA_TYPE = "application/json"


def is_activity_media_type(content_type: str) -> bool:
    """activity+json, or ld+json whose profile lists the AS context (GoToSocial, Mastodon)."""
    media_type, *params = (part.strip() for part in content_type.split(";"))
    if media_type.lower() == AP_MEDIA_TYPE:
        return True
    if media_type.lower() != "application/ld+json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "profile" and AS_CONTEXT in value.strip().strip('"').split():
            return True
    return False
