"""Fuzzing the running inbox: every activity type it handles, every field and header mutated,
signed with a real key whose actor a real loopback server serves, POSTed over real HTTP to
the inbox under uvicorn, on SQLite and PostgreSQL.

The inbox must never answer 5xx, except 503 when a key or actor cannot be fetched right
now; a refused request (4xx) must leave followers, interactions, reports, deliveries and
seen ids as they were. The normal suite runs a bounded number of examples; a longer run:

    FEDIPRESS_FUZZ_EXAMPLES=5000 python -m pytest tests/inbox/test_inbox_fuzz.py \
        -o timeout=3000 --hypothesis-show-statistics

(that many per database; the statistics list the answers' statuses).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fedipress.config import Config
from fedipress.federation.keys import RSAPrivateKey
from tests.inbox.harness import ACTOR, POST, Database
from tests.inbox.remote import AS, RemoteServer
from tests.inbox.served import RawResponse, Served, raw_request, serve_inbox, signed_headers

EXAMPLES = int(os.environ.get("FEDIPRESS_FUZZ_EXAMPLES", "150"))
# 503 is right only for what may work later: fetching the signer's key or actor.
TRANSIENT = ("right now", "unreachable", "signer's key")
KINDS = (
    "Follow",
    "Undo",
    "Accept",
    "Reject",
    "Block",
    "Delete",
    "Update",
    "Move",
    "Like",
    "Announce",
    "Create",
    "Flag",
    "EmojiReact",  # unknown to the inbox
)
TOP_FIELDS = ("@context", "id", "type", "actor", "object", "target", "published", "content")
OBJECT_FIELDS = (
    "id",
    "type",
    "actor",
    "object",
    "content",
    "url",
    "inReplyTo",
    "attributedTo",
    "published",
    "updated",
    "inbox",
    "endpoints",
    "publicKey",
    "preferredUsername",
    "alsoKnownAs",
)
BAD_URLS = (
    "http://[",
    "https://[::1",
    "http://[::1]:99999/x",
    "http://host:port/",
    "https://exa mple.com/",
    "javascript:alert(1)",
    "data:text/html,<script>",
    "",
    "//no-scheme.example/x",
    "http://",
    "https:///path",
    "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "http://127.0.0.1:1/users/alice",
    "http://127.0.0.1/%zz",
)
BAD_DATES = (
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-05-01T12:00:00",
    "yesterday",
    "+275760-09-13T00:00:00Z",
    "2024-05-01T12:00:00.123456789+05:00",
)
ODD_STRINGS = ("\ud800", "a\udfffb", "\x00", "x\x00y", "\u202e\x1b[31mred", "\ufeff", "%00")


@dataclass(frozen=True)
class Raw:
    """JSON text spliced in after encoding: what json.dumps cannot write (deep nesting,
    integers over Python's digit limit)."""

    text: str

    def __repr__(self) -> str:
        return f"Raw(<{len(self.text)} chars: {self.text[:30]}...>)"


class Big(str):
    """A long string that prints short in a failing case's report."""

    def __repr__(self) -> str:
        return f"<{len(self)} chars: {str.__repr__(self[:60])}...>"


def _huge(n: int) -> str:
    return Big("https://127.0.0.1/" + "a" * n)


values: st.SearchStrategy[Any] = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from(BAD_URLS),
    st.sampled_from(BAD_DATES),
    st.sampled_from(ODD_STRINGS),
    st.integers(2_000, 300_000).map(_huge),
    st.integers(4_000, 200_000).map(lambda n: Big("<p>" + "x" * n + "</p>")),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.integers(5, 6_000).map(lambda n: Raw("[" * n + "]" * n)),
    st.integers(5, 3_000).map(lambda n: Raw('{"a":' * n + "1" + "}" * n)),
    st.integers(4_301, 20_000).map(lambda n: Raw("9" * n)),
    st.lists(st.sampled_from((POST, ACTOR, "http://[", _huge(3000))), max_size=300),
    st.recursive(
        st.one_of(st.text(max_size=10), st.integers(), st.none(), st.sampled_from(BAD_URLS)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    ),
)


def base_activity(kind: str, remote: RemoteServer, uid: str) -> dict[str, Any]:
    """A well-formed activity of `kind` from alice, with fresh ids."""
    alice = remote.actor_id("alice")
    new = f"{alice}/{kind.lower()}/{uid}"
    reply = {
        "id": f"{alice}/statuses/{uid}",
        "type": "Note",
        "attributedTo": alice,
        "inReplyTo": POST,
        "content": "<p>Nice post</p>",
        "url": f"{alice}/@alice/{uid}",
        "published": "2024-05-01T12:00:00Z",
        "to": [AS + "#Public"],
    }
    objects: dict[str, Any] = {
        "Follow": ACTOR,
        "Undo": {"id": f"{alice}/follow/{uid}", "type": "Follow", "actor": alice, "object": ACTOR},
        "Accept": {"id": f"{ACTOR}#follows/{uid}", "type": "Follow", "actor": ACTOR},
        "Reject": {"id": f"{ACTOR}#follows/{uid}", "type": "Follow", "actor": ACTOR},
        "Block": ACTOR,
        "Delete": reply["id"],
        "Update": reply,
        "Move": alice,
        "Like": POST,
        "Announce": POST,
        "Create": reply,
        "Flag": [ACTOR, POST],
        "EmojiReact": POST,
    }
    activity: dict[str, Any] = {
        "@context": AS,
        "id": new,
        "type": kind,
        "actor": alice,
        "object": objects[kind],
    }
    if kind == "Move":
        activity["target"] = remote.actor_id("alice2")
    if kind == "Flag":
        activity["content"] = "spam"
    if kind == "Update" and uid[0] in "01234567":
        activity["object"] = remote.actor("alice")  # half the Updates are of the actor
    return activity


def encode(activity: dict[str, Any]) -> bytes:
    """JSON with every Raw spliced in; ensure_ascii writes lone surrogates as \\ud800."""
    raws: dict[str, str] = {}

    def default(value: object) -> str:
        assert isinstance(value, Raw)
        marker = f"@@raw{len(raws)}@@"
        raws[marker] = value.text
        return marker

    text = json.dumps(activity, default=default, ensure_ascii=True)
    for marker, raw in raws.items():
        text = text.replace(json.dumps(marker), raw)
    return text.encode()


field_mutations = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(TOP_FIELDS).map(lambda f: (f,)),
            st.sampled_from(OBJECT_FIELDS).map(lambda f: ("object", f)),
            st.text(max_size=10).map(lambda f: (f,)),
        ),
        values,
        st.booleans(),  # remove the field instead
    ),
    max_size=3,
)

header_values = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60),
    st.sampled_from(
        (
            "",
            "garbage",
            'keyId="https://[",signature="AAAA"',
            'keyId="http://[::1",algorithm="rsa-sha256",headers="date",signature="AA=="',
            'keyId="http://127.0.0.1:1/users/alice#main-key",signature="AAAA"',
            'keyId="",headers="",signature=""',
            'sig1=("@method");created=99999999999999999999;keyid="x"',
            "Mon, 01 Jan 9999 00:00:00 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "SHA-256=",
            "SHA-256=!!!notbase64",
            "MD5=abc",
            "sha-256=:AAAA:",
            "application/activity+json; charset=utf-16",
            'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
            "text/plain",
            "-1",
            "99999999999999999999",
            "0",
        )
    ),
)
HEADERS = (
    "Date",
    "Digest",
    "Signature",
    "Signature-Input",
    "Content-Digest",
    "Content-Type",
    "Content-Length",
    "Host",
    "Accept",
)
KEY_ID = "keyId"  # not a header: the keyId inside a valid Signature (or Signature-Input)
header_mutations = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(HEADERS),
            st.one_of(header_values, st.none()),  # None: the header removed
            st.booleans(),  # add it again instead of replacing it
        ),
        st.tuples(
            st.just(KEY_ID),
            st.one_of(st.sampled_from(BAD_URLS), st.text(max_size=30), st.just(_huge(3000))),
            st.just(False),
        ),
    ),
    max_size=2,
)


@dataclass(frozen=True)
class Case:
    kind: str
    uid: str
    fields: list[tuple[tuple[str, ...], Any, bool]]
    headers: list[tuple[str, str | None, bool]]
    scheme: str

    def __repr__(self) -> str:
        """Short enough to print: huge values are cut (the failing case stays readable)."""
        fields = [(path, _short(value), remove) for path, value, remove in self.fields]
        headers = [(name, _short(value), again) for name, value, again in self.headers]
        return f"Case({self.kind!r}, {self.uid!r}, {fields!r}, {headers!r}, {self.scheme!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis's printer
        printer.text(repr(self))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:120]}...<{len(text)} chars>...{text[-40:]}"


cases = st.builds(
    Case,
    st.sampled_from(KINDS),
    st.uuids().map(lambda u: u.hex),
    field_mutations,
    header_mutations,
    st.sampled_from(("cavage", "rfc9421", "gts")),
)


def mutate(activity: dict[str, Any], path: tuple[str, ...], value: Any, remove: bool) -> None:
    target: Any = activity
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    if remove:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


def apply_headers(
    headers: list[tuple[str, str]], changes: list[tuple[str, str | None, bool]]
) -> list[tuple[str, str]]:
    for name, value, again in changes:
        if name == KEY_ID:
            headers = [(k, _with_key_id(k, v, str(value))) for k, v in headers]
            continue
        if not again:
            headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
        if value is not None:
            headers.append((name, value))
    return headers


def _with_key_id(name: str, value: str, key_id: str) -> str:
    """A signature header with another key id: the signature itself stays valid (draft-cavage
    does not sign the keyId), so the key fetch sees the mutated id."""
    if name.lower() not in ("signature", "signature-input"):
        return value
    quoted = json.dumps(key_id)[1:-1].replace('"', "")
    return re.sub(r'(?i)(keyid=")[^"]*(")', lambda m: m[1] + quoted + m[2], value)


def send(served: Served, case: Case) -> RawResponse:
    activity = base_activity(case.kind, served.remote, case.uid)
    for path, value, remove in case.fields:
        mutate(activity, path, value, remove)
    body = encode(activity)
    headers = signed_headers(served.remote, body, scheme=case.scheme)
    headers = apply_headers(headers, case.headers)
    # A Content-Length over the body makes the server wait for the rest: a slow-body
    # question (the body-read deadline), not a malformed request; those are left out.
    headers = [(k, v) for k, v in headers if not _over(k, v, len(body))]
    return raw_request(served.port, "POST", "/ap/inbox", headers, body)


def _over(name: str, value: str, size: int) -> bool:
    if name.lower() != "content-length":
        return False
    try:
        return int(value.strip()) > size
    except ValueError:
        return False


@pytest.fixture
def served(
    database: Database, remote: RemoteServer, blog_key: RSAPrivateKey, inbox_config: Config
) -> Iterator[Served]:
    with serve_inbox(database, remote, blog_key, inbox_config) as running:
        yield running


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases)
def test_fuzz__no_5xx_and_refusals_change_nothing(served: Served, case: Case) -> None:
    # Given the store as it is
    before = served.db.counts()
    # When a mutated, signed activity is posted over HTTP
    response = send(served, case)
    event(f"status {response.status}")  # the spread, with --hypothesis-show-statistics
    # Then the answer is no server error (503 only for a fetch that may work later)
    assert response.status < 500 or (
        response.status == 503 and any(t in response.reason() for t in TRANSIENT)
    ), (response.status, response.reason())
    # And a refusal (or a reset connection) changed nothing
    if response.status >= 400 or response.status == 0:
        assert served.db.counts() == before, (response.status, response.reason())


def test_fuzz__the_harness_reaches_the_handlers(served: Served) -> None:
    # Given unmutated activities of each kind, sent through the fuzzer's own path
    statuses = {}
    for kind in KINDS:
        case = Case(kind, uuid.uuid4().hex, [], [], "cavage")
        statuses[kind] = send(served, case).status
    # Then they are accepted: the fuzzer's mutations start from requests that work
    assert statuses == dict.fromkeys(KINDS, 202)
    assert served.db.counts()["interactions"] >= 3  # Like, Announce, Create reply
