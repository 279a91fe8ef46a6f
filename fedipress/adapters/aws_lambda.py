"""The inbox as an AWS Lambda handler: API Gateway HTTP API (payload 2.0) and Lambda
function URL events, the older REST API (1.0) shape too, base64 bodies included; and
scheduled invocations, which send the delivery queue with no request at all.

Deploy the site folder (fedipress.yaml, the public key) with the function, and set
FEDIPRESS_SITE_DIR, FEDIPRESS_PRIVATE_KEY and FEDIPRESS_DATABASE_URL (PostgreSQL: Lambda's
disk does not last). The handler answers, then sends what the request queued (the Accept
of a Follow) before returning, since nothing runs between invocations. What does not fit in
that budget, and every retry, goes out on the next scheduled invocation: an EventBridge rule
(`"detail-type": "Scheduled Event"`, `"source": "aws.events"`) or an EventBridge Scheduler
schedule, whose event is the schedule's input (see `is_scheduled_event`).
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fedipress.inbox.http import InboxRequest, InboxResponse
from fedipress.inbox.service import InboxService
from fedipress.inbox.setup import InboxSetup, open_inbox, site_dir_from

SEND_BUDGET = 5.0  # seconds spent sending queued replies after answering
STORE_GRACE = 2.0  # seconds beyond the budget for the store's work, before giving up on it
SCHEDULED = "Scheduled Event"

_loop: asyncio.AbstractEventLoop | None = None
_service: InboxService | None = None


def is_scheduled_event(event: Mapping[str, Any]) -> bool:
    """An invocation by a schedule rather than an HTTP request.

    - An EventBridge rule with a schedule sends `{"version": "0", "detail-type": "Scheduled
      Event", "source": "aws.events", "resources": [<rule ARN>], "detail": {}, …}`.
    - EventBridge Scheduler sends the schedule's input as it is: the input docs/deploy.md
      gives (`"source": "aws.scheduler"`, `"detail-type": "Scheduled Event"`), or `{}` when
      the schedule has none (also what `aws lambda invoke` sends without a payload).

    HTTP events (function URL, API Gateway) always carry `requestContext`, and a request
    cannot shape the event's top level, so none of them passes for a schedule."""
    if "requestContext" in event or "httpMethod" in event or "rawPath" in event:
        return False
    if not event:
        return True
    return event.get("detail-type") == SCHEDULED and event.get("source") in (
        "aws.events",
        "aws.scheduler",
    )


def request_from_event(event: Mapping[str, Any]) -> InboxRequest:
    """An InboxRequest from an HTTP API v2 / function URL event, or a REST API v1 event;
    ValueError for an event of another kind (an S3 notification routed here by mistake)."""
    if "requestContext" not in event and "httpMethod" not in event and "rawPath" not in event:
        kind = event.get("detail-type") or event.get("source") or ", ".join(sorted(event)[:5])
        raise ValueError(f"not an HTTP request nor a schedule: an event of {kind!r}")
    # REST API (1.0) events keep only the last of repeated headers in `headers`; all of them
    # are in `multiValueHeaders`, joined here as HTTP API (2.0) events join them.
    multi = event.get("multiValueHeaders")
    if multi:
        headers = {str(k): ", ".join(str(v) for v in vs) for k, vs in multi.items() if vs}
    else:
        headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    if event.get("version") == "2.0" or "rawPath" in event:
        method = event["requestContext"]["http"]["method"]
        path = event.get("rawPath") or "/"
        query = event.get("rawQueryString") or ""
        if event.get("cookies"):
            headers["cookie"] = "; ".join(event["cookies"])
    else:
        method = event["httpMethod"]
        path = event.get("path") or "/"
        multi = event.get("multiValueQueryStringParameters") or {}
        single = event.get("queryStringParameters") or {}
        pairs = [(k, v) for k, vs in multi.items() for v in vs] or list(single.items())
        query = urlencode(pairs)
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    return InboxRequest(method.upper(), path, query, tuple(headers.items()), body)


def response_to_result(response: InboxResponse) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in response.headers:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return {
        "statusCode": response.status,
        "headers": headers,
        "body": base64.b64encode(response.body).decode("ascii"),
        "isBase64Encoded": True,
    }


async def handle_event(service: InboxService, event: Mapping[str, Any]) -> dict[str, Any]:
    """Answer one event, then spend up to SEND_BUDGET seconds sending queued deliveries (and
    pruning old rows, once an hour per container), and call the build hook if one is due. A
    scheduled event is a sending round of its own, within the drain budget
    (FEDIPRESS_DRAIN_BUDGET); it returns what it did."""
    if is_scheduled_event(event):
        summary = await service.drain_queue()
        await service.after_request()  # a build hook call that came due between requests
        return {"scheduled": True, **summary.as_json()}
    response = await service.handle(request_from_event(event))
    try:
        await asyncio.wait_for(
            service.sender.drain_and_prune(budget=SEND_BUDGET), SEND_BUDGET + STORE_GRACE
        )
    except TimeoutError:
        pass  # only a store that hangs gets here; its rows wait for the next invocation
    await service.after_request()  # a build hook call that is due
    return response_to_result(response)


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
    """The Lambda entry point: `fedipress.adapters.aws_lambda.handler`."""
    global _loop, _service
    if _loop is None:
        _loop = asyncio.new_event_loop()  # one loop per container: clients and caches live on
    if _service is None:
        _service = open_inbox(InboxSetup(site_dir_from(os.environ)))
    return _loop.run_until_complete(handle_event(_service, event))
