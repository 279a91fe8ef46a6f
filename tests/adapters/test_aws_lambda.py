"""The AWS Lambda adapter with the event shapes AWS documents, written out as recorded: API
Gateway HTTP API (payload 2.0), a Lambda function URL, a REST API (1.0) event, and a
WebFinger GET. A real InboxService answers them (SQLite, or PostgreSQL for the handler),
and the fake remote server of tests/inbox serves alice and bob and records what it gets."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fedipress.adapters import aws_lambda
from fedipress.adapters.aws_lambda import (
    handle_event,
    handler,
    is_scheduled_event,
    request_from_event,
    response_to_result,
)
from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from fedipress.federation.keys import RSAPrivateKey, load_private_key
from fedipress.federation.signatures import sign_request
from fedipress.federation.store import open_store
from fedipress.inbox.http import InboxResponse
from fedipress.inbox.service import InboxService
from fedipress.inbox.setup import InboxSetup, open_inbox
from tests.inbox.harness import ACTOR, verify_blog_request
from tests.inbox.remote import AS, RemoteServer, load_key, serve_in_thread

INBOX_URL = "https://blog.example/ap/inbox"  # the public address the config names
FUNCTION_HOST = "k3x7qz2lw5mfp4uv6aj3n7dz5e0tbqho.lambda-url.eu-west-1.on.aws"
POSTGRES_URL = os.environ.get(
    "FEDIPRESS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SITE = """
-- fedipress.yaml --
title: Lambda
base_url: https://blog.example/
fediverse: {username: blog}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def remote_server() -> Iterator[RemoteServer]:
    app = RemoteServer({"alice": load_key("alice"), "bob": load_key("bob")})
    with serve_in_thread(app) as server:
        app.port = server.port  # type: ignore[attr-defined]
        yield app


@pytest.fixture
def remote(remote_server: RemoteServer) -> RemoteServer:
    remote_server.reset()
    return remote_server


@pytest.fixture
def site(make_site) -> tuple[Path, RSAPrivateKey]:
    """A site with a fediverse section and its key pair; returns (folder, private key)."""
    root = make_site(SITE)
    _paths, private = generate_keys(root, load_config(root))
    return root, load_private_key(private)


@pytest.fixture
async def service(site: tuple[Path, RSAPrivateKey]) -> AsyncIterator[InboxService]:
    """The inbox as production assembles it, with its SQLite store in the site folder."""
    inbox = open_inbox(InboxSetup(site[0], allow_private=True), environ={})
    yield inbox
    await inbox.aclose()
    inbox.store.close()


@pytest.fixture
def lambda_globals() -> Iterator[None]:
    """handler() caches its service and loop in the module: start clean, close and restore."""
    saved = aws_lambda._service, aws_lambda._loop
    aws_lambda._service = aws_lambda._loop = None
    try:
        yield
    finally:
        service, loop = aws_lambda._service, aws_lambda._loop
        if service is not None and loop is not None:
            loop.run_until_complete(service.aclose())
            service.store.close()
        if loop is not None:
            loop.close()
        aws_lambda._service, aws_lambda._loop = saved


# --- events, as AWS documents them ---------------------------------------------------------


def follow_of(remote: RemoteServer, name: str) -> dict[str, Any]:
    actor = remote.actor_id(name)
    return {
        "@context": AS,
        "id": f"{actor}#follows/{uuid.uuid4().hex}",
        "type": "Follow",
        "actor": actor,
        "object": ACTOR,
    }


def signed_by(remote: RemoteServer, name: str, body: bytes) -> dict[str, str]:
    """What `name`'s server sends with `body`: Host, Date, Digest, Content-Type, Signature."""
    headers = {"Content-Type": "application/activity+json"}
    key_id = remote.key_id(name)
    return sign_request(
        "POST", INBOX_URL, headers, body, key_id, remote.keys[name], datetime.now(UTC)
    )


def http_api_event(body: bytes, signed: dict[str, str]) -> dict[str, Any]:
    """API Gateway HTTP API, payload format 2.0, on the custom domain blog.example."""
    return {
        "version": "2.0",
        "routeKey": "POST /ap/inbox",
        "rawPath": "/ap/inbox",
        "rawQueryString": "",
        "headers": {
            "accept": "application/activity+json, application/ld+json",
            "accept-encoding": "gzip",
            "content-length": str(len(body)),
            "content-type": signed["Content-Type"],
            "date": signed["Date"],
            "digest": signed["Digest"],
            "host": "blog.example",
            "signature": signed["Signature"],
            "user-agent": "http.rb/5.1.1 (Mastodon/4.2.8; +https://social.example/)",
            "x-amzn-trace-id": "Root=1-65f1c2a3-0d4e5f60718293a4b5c6d7e8",
            "x-forwarded-for": "203.0.113.9, 198.51.100.4",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "r3pmxmplak",
            "domainName": "blog.example",
            "domainPrefix": "blog",
            "http": {
                "method": "POST",
                "path": "/ap/inbox",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "http.rb/5.1.1 (Mastodon/4.2.8; +https://social.example/)",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "POST /ap/inbox",
            "stage": "$default",
            "time": "10/Mar/2024:12:00:00 +0000",
            "timeEpoch": 1710072000000,
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


def function_url_event(body: bytes, signed: dict[str, str]) -> dict[str, Any]:
    """A Lambda function URL behind a proxy (Netlify, CloudFront) that rewrites Host."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/ap/inbox",
        "rawQueryString": "",
        "headers": {
            "content-length": str(len(body)),
            "content-type": signed["Content-Type"],
            "date": signed["Date"],
            "digest": signed["Digest"],
            "host": FUNCTION_HOST,
            "signature": signed["Signature"],
            "user-agent": "Misskey/2024.3.1 (https://misskey.example)",
            "x-amzn-tls-cipher-suite": "ECDHE-RSA-AES128-GCM-SHA256",
            "x-amzn-tls-version": "TLSv1.2",
            "x-amzn-trace-id": "Root=1-65f1c2a4-1e2f3a4b5c6d7e8f9a0b1c2d",
            "x-forwarded-for": "198.51.100.4",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": FUNCTION_HOST.split(".")[0],
            "domainName": FUNCTION_HOST,
            "domainPrefix": FUNCTION_HOST.split(".")[0],
            "http": {
                "method": "POST",
                "path": "/ap/inbox",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.4",
                "userAgent": "Misskey/2024.3.1 (https://misskey.example)",
            },
            "requestId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "routeKey": "$default",
            "stage": "$default",
            "time": "10/Mar/2024:12:00:01 +0000",
            "timeEpoch": 1710072001000,
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


def rest_api_event(body: bytes, signed: dict[str, str]) -> dict[str, Any]:
    """API Gateway REST API, payload format 1.0: header names as sent, body not encoded."""
    single = {
        "Content-Type": signed["Content-Type"],
        "Date": signed["Date"],
        "Digest": signed["Digest"],
        "Host": "blog.example",
        "Signature": signed["Signature"],
        "User-Agent": "Akkoma 3.10.2; https://akkoma.example",
        "X-Forwarded-For": "198.51.100.4",
        "X-Forwarded-Proto": "https",
    }
    multi = {name: [value] for name, value in single.items()}
    multi["X-Forwarded-For"] = ["203.0.113.9", "198.51.100.4"]
    return {
        "resource": "/ap/inbox",
        "path": "/ap/inbox",
        "httpMethod": "POST",
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "1234567890",
            "domainName": "blog.example",
            "httpMethod": "POST",
            "identity": {"sourceIp": "198.51.100.4", "userAgent": single["User-Agent"]},
            "path": "/prod/ap/inbox",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "resourcePath": "/ap/inbox",
            "stage": "prod",
        },
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }


WEBFINGER_EVENT: dict[str, Any] = {
    "version": "2.0",
    "routeKey": "GET /.well-known/webfinger",
    "rawPath": "/.well-known/webfinger",
    "rawQueryString": "resource=acct%3Ablog%40blog.example",
    "headers": {
        "accept": "application/jrd+json, application/json",
        "host": "blog.example",
        "user-agent": "http.rb/5.1.1 (Mastodon/4.2.8; +https://social.example/)",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "https",
    },
    "queryStringParameters": {"resource": "acct:blog@blog.example"},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "r3pmxmplak",
        "domainName": "blog.example",
        "domainPrefix": "blog",
        "http": {
            "method": "GET",
            "path": "/.well-known/webfinger",
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9",
            "userAgent": "http.rb/5.1.1 (Mastodon/4.2.8; +https://social.example/)",
        },
        "requestId": "JKJaXmPLvHcESHB=",
        "routeKey": "GET /.well-known/webfinger",
        "stage": "$default",
        "time": "10/Mar/2024:12:00:02 +0000",
        "timeEpoch": 1710072002000,
    },
    "isBase64Encoded": False,
}


def body_of(result: dict[str, Any]) -> bytes:
    assert result["isBase64Encoded"] is True
    return base64.b64decode(result["body"], validate=True)


# --- handle_event -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "name"),
    [(http_api_event, "alice"), (function_url_event, "bob"), (rest_api_event, "alice")],
    ids=["http-api-2.0", "function-url", "rest-api-1.0"],
)
@pytest.mark.anyio
async def test_handle_event__signed_follow_is_answered_and_accepted_before_return(
    service: InboxService,
    remote: RemoteServer,
    site: tuple[Path, RSAPrivateKey],
    shape: Any,
    name: str,
) -> None:
    # Given a Follow signed for the public inbox URL, in the event shape of an AWS front door
    follow = follow_of(remote, name)
    body = json.dumps(follow).encode()
    event = shape(body, signed_by(remote, name, body))
    # When the adapter handles it
    result = await handle_event(service, event)
    # Then it answers 202, stores the follower, and the Accept has already been delivered:
    # nothing runs between Lambda invocations, so no waiting here
    assert result["statusCode"] == 202, body_of(result)
    follower = service.store.get_follower(remote.actor_id(name))
    assert follower is not None and follower.state == "accepted"
    assert follower.inbox == remote.inbox(name)
    (accept,) = remote.posts(f"/users/{name}/inbox")
    assert accept.json()["type"] == "Accept" and accept.json()["object"] == follow
    key_id = await verify_blog_request(accept, remote, site[1], datetime.now(UTC))
    assert key_id == f"{ACTOR}#main-key"
    stats = service.store.queue_stats()
    assert (stats.pending, stats.done) == (0, 1)


@pytest.mark.anyio
async def test_handle_event__unsigned_follow_is_refused_and_nothing_stored(
    service: InboxService, remote: RemoteServer
) -> None:
    # Given the same HTTP API event without Signature (and so without a key to check)
    body = json.dumps(follow_of(remote, "alice")).encode()
    event = http_api_event(body, signed_by(remote, "alice", body))
    del event["headers"]["signature"]
    # When it is handled
    result = await handle_event(service, event)
    # Then 401 with a JSON reason, no follower, nothing queued, nothing sent
    assert result["statusCode"] == 401
    assert "error" in json.loads(body_of(result))
    assert service.store.count_followers(state=None) == 0
    stats = service.store.queue_stats()
    assert (stats.pending, stats.done) == (0, 0)
    assert remote.posts() == []


@pytest.mark.anyio
async def test_handle_event__tampered_base64_body_is_refused(
    service: InboxService, remote: RemoteServer
) -> None:
    # Given a signed Follow whose body changed after signing (the Digest no longer matches)
    body = json.dumps(follow_of(remote, "alice")).encode()
    event = http_api_event(body, signed_by(remote, "alice", body))
    other = json.dumps(follow_of(remote, "bob")).encode()
    event["body"] = base64.b64encode(other).decode("ascii")
    # When it is handled, Then it is refused: the adapter decoded the exact bytes sent
    result = await handle_event(service, event)
    assert result["statusCode"] == 401
    assert service.store.count_followers(state=None) == 0


@pytest.mark.anyio
async def test_handle_event__webfinger_answers_the_jrd(service: InboxService) -> None:
    result = await handle_event(service, WEBFINGER_EVENT)
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"] == "application/jrd+json"
    assert result["headers"]["Access-Control-Allow-Origin"] == "*"
    jrd = json.loads(body_of(result))
    assert jrd["subject"] == "acct:blog@blog.example"
    (self_link,) = [link for link in jrd["links"] if link["rel"] == "self"]
    assert self_link == {"rel": "self", "type": "application/activity+json", "href": ACTOR}


@pytest.mark.anyio
async def test_handle_event__rest_api_webfinger_for_another_account_is_404(
    service: InboxService,
) -> None:
    # Given a REST API (1.0) event: the query only as decoded parameters
    event = {
        "resource": "/.well-known/webfinger",
        "path": "/.well-known/webfinger",
        "httpMethod": "GET",
        "headers": {"Host": "blog.example", "Accept": "application/jrd+json"},
        "multiValueHeaders": {"Host": ["blog.example"], "Accept": ["application/jrd+json"]},
        "queryStringParameters": {"resource": "acct:someone@blog.example"},
        "multiValueQueryStringParameters": {"resource": ["acct:someone@blog.example"]},
        "requestContext": {"httpMethod": "GET", "path": "/prod/.well-known/webfinger"},
        "body": None,
        "isBase64Encoded": False,
    }
    result = await handle_event(service, event)
    assert result["statusCode"] == 404
    assert json.loads(body_of(result)) == {"error": "no such account here"}


# --- request_from_event and response_to_result --------------------------------------------


def test_request_from_event__http_api_keeps_raw_query_cookies_and_joined_headers() -> None:
    event = dict(WEBFINGER_EVENT, cookies=["a=1", "b=2"])
    request = request_from_event(event)
    assert (request.method, request.path) == ("GET", "/.well-known/webfinger")
    assert request.query == "resource=acct%3Ablog%40blog.example"
    assert request.target == "/.well-known/webfinger?resource=acct%3Ablog%40blog.example"
    assert request.header("Cookie") == "a=1; b=2"
    assert request.header("accept") == "application/jrd+json, application/json"
    assert request.body == b""


def test_request_from_event__rest_api_joins_multi_value_headers() -> None:
    # Given a 1.0 event: `headers` holds only the last X-Forwarded-For, the list holds both
    body = b'{"type": "Follow"}'
    event = rest_api_event(
        body, {"Content-Type": "a/b", "Date": "d", "Digest": "x", "Signature": "s"}
    )
    request = request_from_event(event)
    assert request.header("x-forwarded-for") == "203.0.113.9, 198.51.100.4"
    assert request.header("content-type") == "a/b"
    assert (request.method, request.path, request.query, request.body) == (
        "POST",
        "/ap/inbox",
        "",
        body,
    )


def test_response_to_result__base64_body_and_repeated_headers_joined() -> None:
    response = InboxResponse(
        202,
        (("Vary", "Accept"), ("Content-Type", "application/json"), ("Vary", "Origin")),
        b'{"ok": true}\n',
    )
    assert response_to_result(response) == {
        "statusCode": 202,
        "headers": {"Vary": "Accept, Origin", "Content-Type": "application/json"},
        "body": base64.b64encode(b'{"ok": true}\n').decode("ascii"),
        "isBase64Encoded": True,
    }


# --- handler(event, context): the entry point, configured by the environment -------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL (what a Lambda inbox keeps its store in)."""
    schema = f"fedipress_lambda_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        pytest.fail(f"the Lambda handler test needs PostgreSQL at {POSTGRES_URL}: {exc}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.usefixtures("lambda_globals")
def test_handler__configured_by_environment_serves_two_invocations(
    site: tuple[Path, RSAPrivateKey],
    remote: RemoteServer,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a deployed site folder without the private key file: the key is a secret in
    # the environment, and the store is PostgreSQL
    root, blog_key = site
    private = root / ".fedipress" / "private.pem"
    monkeypatch.setenv("FEDIPRESS_PRIVATE_KEY", private.read_text())
    private.unlink()
    monkeypatch.setenv("FEDIPRESS_SITE_DIR", str(root))
    monkeypatch.setenv("FEDIPRESS_DATABASE_URL", postgres_url)
    monkeypatch.setenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "1")
    # When Lambda invokes the handler for a WebFinger lookup, then for a signed Follow
    webfinger = handler(WEBFINGER_EVENT, None)
    first_service = aws_lambda._service
    follow = follow_of(remote, "alice")
    body = json.dumps(follow).encode()
    result = handler(http_api_event(body, signed_by(remote, "alice", body)), object())
    # Then both are answered by the one service the container keeps
    assert webfinger["statusCode"] == 200
    assert json.loads(body_of(webfinger))["subject"] == "acct:blog@blog.example"
    assert result["statusCode"] == 202, body_of(result)
    assert aws_lambda._service is first_service is not None
    # And the follower is in PostgreSQL, and alice got a verifiable Accept before return
    store = open_store(postgres_url, root)
    try:
        follower = store.get_follower(remote.actor_id("alice"))
        assert follower is not None and follower.follow_activity_id == follow["id"]
    finally:
        store.close()
    (accept,) = remote.posts("/users/alice/inbox")
    assert accept.json()["object"] == follow
    asyncio.run(verify_blog_request(accept, remote, blog_key, datetime.now(UTC)))


# --- scheduled invocations: the queue goes out with no request at all ------------------------

# An EventBridge rule with a schedule expression, as its documentation shows the event.
EVENTBRIDGE_RULE_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2024-03-10T12:05:00Z",
    "region": "eu-central-1",
    "resources": ["arn:aws:events:eu-central-1:123456789012:rule/blog-inbox-deliver"],
    "detail": {},
}
# EventBridge Scheduler sends the schedule's input, its <aws.scheduler.…> keywords filled in:
# the input docs/deploy.md gives, and no input at all.
SCHEDULER_EVENT: dict[str, Any] = {
    "source": "aws.scheduler",
    "detail-type": "Scheduled Event",
    "time": "2024-03-10T12:05:00Z",
    "resources": ["arn:aws:scheduler:eu-central-1:123456789012:schedule/default/blog-deliver"],
}


def queue_accepts(service: InboxService, remote: RemoteServer, *names: str) -> None:
    """Accepts queued by earlier requests whose send budget ran out."""
    now = datetime.now(UTC)
    for name in names:
        body = json.dumps({"@context": AS, "id": f"{ACTOR}#accepts/{name}", "type": "Accept"})
        service.store.enqueue(f"{ACTOR}#accepts/{name}", [remote.inbox(name)], body, now)


@pytest.mark.parametrize(
    "event", [EVENTBRIDGE_RULE_EVENT, SCHEDULER_EVENT, {}], ids=["rule", "scheduler", "no-input"]
)
@pytest.mark.anyio
async def test_handle_event__a_schedule_sends_the_queue(
    service: InboxService, remote: RemoteServer, site: tuple[Path, RSAPrivateKey], event: Any
) -> None:
    # Given two deliveries waiting in the store, and no request coming in
    queue_accepts(service, remote, "alice", "bob")
    # When the schedule invokes the function
    result = await handle_event(service, event)
    # Then both are sent, signed, and the invocation says what it did
    assert result == {"scheduled": True, "delivered": 2, "retrying": 0, "failed": 0, "pending": 0}
    for name in ("alice", "bob"):
        (accept,) = remote.posts(f"/users/{name}/inbox")
        key_id = await verify_blog_request(accept, remote, site[1], datetime.now(UTC))
        assert key_id == f"{ACTOR}#main-key"
    assert service.store.queue_stats().done == 2


@pytest.mark.anyio
async def test_handle_event__a_scheduled_drain_stops_at_its_budget_and_resumes(
    site: tuple[Path, RSAPrivateKey], remote: RemoteServer
) -> None:
    # Given an inbox whose scheduled drains may send for 2 "seconds", on a clock where each
    # request the remote receives takes one, and three deliveries to one host, one at a time
    inbox = open_inbox(
        InboxSetup(site[0], allow_private=True), environ={"FEDIPRESS_DRAIN_BUDGET": "2"}
    )
    try:
        inbox.sender.per_host = 1
        inbox.sender.monotonic = lambda: float(len(remote.posts()))
        queue_accepts(inbox, remote, "alice", "bob", "carol")
        # When the schedule fires twice
        first = await handle_event(inbox, EVENTBRIDGE_RULE_EVENT)
        second = await handle_event(inbox, EVENTBRIDGE_RULE_EVENT)
    finally:
        await inbox.aclose()
        inbox.store.close()
    # Then the first round sends two and leaves one; the second sends that one
    assert (first["delivered"], first["pending"]) == (2, 1)
    assert (second["delivered"], second["pending"]) == (1, 0)
    assert sorted(p.path for p in remote.posts()) == [
        f"/users/{name}/inbox" for name in ("alice", "bob", "carol")
    ]


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "Scheduled Event", "source": "aws.s3"},
        {"Records": [{"eventSource": "aws:s3"}]},
        dict(EVENTBRIDGE_RULE_EVENT, requestContext={"http": {"method": "GET"}}),
    ],
    ids=["other-source", "s3-notification", "http-shaped"],
)
def test_is_scheduled_event__only_the_schedule_shapes(event: dict[str, Any]) -> None:
    assert not is_scheduled_event(event)
    assert is_scheduled_event(EVENTBRIDGE_RULE_EVENT) and is_scheduled_event(SCHEDULER_EVENT)


@pytest.mark.anyio
async def test_handle_event__an_event_of_another_kind_is_a_clear_error(
    service: InboxService,
) -> None:
    with pytest.raises(ValueError, match=r"not an HTTP request nor a schedule: .*Records"):
        await handle_event(service, {"Records": [{"eventSource": "aws:s3"}]})
