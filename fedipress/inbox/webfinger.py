"""WebFinger answered by a server that sees the query (the dev server, the inbox host).

A static host answers every `resource` with the one JRD file; a server can do what RFC 7033
asks: 400 for a missing or malformed resource, 404 for another account.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fedipress.config import Config
from fedipress.documents.urls import WEBFINGER_PATH
from fedipress.documents.webfinger import jrd_for_resource
from fedipress.hosting import header_rules, headers_for

_ERRORS = {400: "missing or malformed 'resource' parameter", 404: "no such account here"}


def answer_webfinger(config: Config, query_string: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) for GET /.well-known/webfinger?QUERY."""
    values = parse_qs(query_string, keep_blank_values=True).get("resource", [])
    resource = values[0] if len(values) == 1 else None
    status, jrd = jrd_for_resource(config, resource)
    headers = headers_for(WEBFINGER_PATH, header_rules(config))
    body = jrd if jrd is not None else {"error": _ERRORS[status]}
    return status, headers, (json.dumps(body, indent=2) + "\n").encode()
