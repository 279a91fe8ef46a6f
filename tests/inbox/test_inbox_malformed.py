"""Malformed input gets a 4xx with a reason, never a 500, and changes nothing; and the caps on
what one activity or one reporter may add to the store (ids, replies, reports)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fedipress.federation.activities import (
    MAX_ID_LENGTH,
    MAX_NESTING,
    MAX_RAW_JSON,
    MAX_REPLY_CONTENT,
    MAX_REPORT_CONTENT,
    MAX_REPORT_OBJECTS,
    MAX_REPORTS_PER_HOUR,
    MAX_TYPE_LENGTH,
)
from tests.inbox.harness import ACTOR, POST, Inbox

pytestmark = pytest.mark.anyio


def _reply(inbox: Inbox, **changes: Any) -> dict[str, Any]:
    alice = inbox.remote.actor_id("alice")
    note = {
        "id": f"{alice}/statuses/1",
        "type": "Note",
        "attributedTo": alice,
        "inReplyTo": POST,
        "content": "<p>hi</p>",
    }
    return inbox.activity("Create", {**note, **changes})


# Each case: a signed activity that once answered 500; each must be refused with 400.
MALFORMED: dict[str, Any] = {
    "id_unparseable": lambda i: {**i.activity("Like", POST), "id": "http://["},
    "actor_unparseable": lambda i: {**i.activity("Like", POST), "actor": "http://["},
    "object_unparseable": lambda i: i.activity("Like", "http://[::1"),
    "target_unparseable": lambda i: i.activity(
        "Move", i.remote.actor_id("alice"), target="http://["
    ),
    "reply_id_unparseable": lambda i: _reply(i, id="http://["),
    "lone_surrogate": lambda i: _reply(i, content="<p>\ud800</p>"),
    "lone_surrogate_in_a_key": lambda i: {**i.activity("Like", POST), "\udfff": 1},
    "nul_character": lambda i: i.activity("Flag", [ACTOR], content="a\x00b"),
    "type_a_list": lambda i: i.activity("Update", {"id": "x", "type": ["Person", "Note"]}),
    "type_an_object": lambda i: _reply(i, type={"a": 1}),
    "url_href_an_object": lambda i: _reply(i, url={"href": {"a": 1}}),
    "url_a_number": lambda i: _reply(i, url=[5]),
    "content_an_object": lambda i: _reply(i, content={"en": "<p>hi</p>"}),
    "nesting_40_deep": lambda i: {**i.activity("Like", POST), "x": json.loads("[" * 40 + "]" * 40)},
    "id_too_long": lambda i: {
        **i.activity("Like", POST),
        "id": i.remote.actor_id("alice") + "/" + "a" * MAX_ID_LENGTH,
    },
    "object_too_long": lambda i: i.activity("Like", POST + "a" * MAX_ID_LENGTH),
}


@pytest.mark.parametrize("case", MALFORMED)
async def test_malformed_activity__is_400_with_a_reason_and_changes_nothing(
    inbox: Inbox, case: str
) -> None:
    # Given an inbox with a follower
    await inbox.followed_by("alice")
    before = inbox.db.counts()
    # When a correctly signed but malformed activity arrives
    response = await inbox.post(MALFORMED[case](inbox))
    # Then it is refused with a reason, and nothing was stored
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert inbox.db.counts() == before


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000 + b"]" * 5000,  # deeper than the JSON parser's stack
        b'{"a": ' + b"9" * 5000 + b"}",  # an integer over Python's 4,300 digits
        b'{"a": "\\u0000"}',
    ],
    ids=["deep", "huge_integer", "nul"],
)
async def test_unparseable_body__is_400_before_the_signature(
    sqlite_inbox: Inbox, raw: bytes
) -> None:
    # When such a body arrives, unsigned
    response = await sqlite_inbox.client.post(
        "/ap/inbox", content=raw, headers={"Content-Type": "application/activity+json"}
    )
    # Then it is a 400 with a reason
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize(
    "published", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "0999-01-01T00:00Z"]
)
async def test_out_of_range_date__is_ignored_like_a_missing_one(
    inbox: Inbox, published: str
) -> None:
    # When a Like carries a date with no UTC form within the years 1000-9999
    like = inbox.activity("Like", POST, published=published)
    response = await inbox.post(like)
    # Then it is stored with the time it arrived
    assert response.status_code == 202
    stored = inbox.store.get_interaction(like["id"])
    assert stored is not None and stored.published is not None
    assert abs(stored.published - inbox.clock()) < timedelta(minutes=5)


async def test_webfinger__unparseable_resource_is_400(sqlite_inbox: Inbox) -> None:
    for resource in ("http://[", "https://[::1", "http://blog.example:99999/"):
        response = await sqlite_inbox.client.get(
            "/.well-known/webfinger", params={"resource": resource}
        )
        assert response.status_code in (400, 404), resource
        assert response.json()["error"]


# --- caps ------------------------------------------------------------------------------------


async def test_reply__content_is_cut_to_the_cap(inbox: Inbox) -> None:
    # When a reply arrives with content far over the cap
    create = _reply(inbox, content="<p>" + "x" * (5 * MAX_REPLY_CONTENT) + "</p>")
    assert (await inbox.post(create)).status_code == 202
    # Then the stored HTML is cut (and its tags closed), and the huge raw JSON not kept
    stored = inbox.store.get_interaction(create["object"]["id"])
    assert stored is not None and stored.content_html is not None
    assert MAX_REPLY_CONTENT - 10 <= len(stored.content_html) <= MAX_REPLY_CONTENT + 10
    assert stored.content_html.endswith("</p>")
    assert stored.raw_json is None


async def test_reply__small_one_keeps_its_raw_json(sqlite_inbox: Inbox) -> None:
    create = _reply(sqlite_inbox)
    assert (await sqlite_inbox.post(create)).status_code == 202
    stored = sqlite_inbox.store.get_interaction(create["object"]["id"])
    assert stored is not None and stored.raw_json is not None
    assert json.loads(stored.raw_json)["id"] == create["object"]["id"]


async def test_report__comment_and_objects_are_cut_to_the_caps(inbox: Inbox) -> None:
    # When a report arrives with a huge comment and many reported objects
    objects = [f"{POST}/{n}" for n in range(MAX_REPORT_OBJECTS * 3)]
    flag = inbox.activity("Flag", objects, content="y" * (MAX_REPORT_CONTENT * 40))
    assert (await inbox.post(flag)).status_code == 202
    # Then what is stored is cut to the caps
    [stored] = inbox.store.list_flags()
    assert stored.content == "y" * MAX_REPORT_CONTENT
    assert stored.object_ids == tuple(objects[:MAX_REPORT_OBJECTS])
    assert stored.raw_json is not None and len(stored.raw_json) < 4 * MAX_REPORT_CONTENT + 10_000


async def test_report__over_the_hourly_limit_is_dropped_with_202(inbox: Inbox) -> None:
    # Given alice reported as often as an hour allows
    for n in range(MAX_REPORTS_PER_HOUR):
        flag = inbox.activity("Flag", [ACTOR], content=f"report {n}")
        assert (await inbox.post(flag)).status_code == 202
    # When she sends one more, and bob sends his first
    extra = inbox.activity("Flag", [ACTOR], content="one too many")
    bobs = inbox.activity("Flag", [ACTOR], actor="bob", content="from bob")
    assert (await inbox.post(extra)).status_code == 202
    assert (await inbox.post(bobs, actor="bob")).status_code == 202
    # Then hers is dropped, his stored
    stored = {f.id for f in inbox.store.list_flags()}
    assert extra["id"] not in stored and bobs["id"] in stored
    assert len(stored) == MAX_REPORTS_PER_HOUR + 1
    # And an hour later she can report again
    inbox.clock.offset = timedelta(hours=1, minutes=1)
    later = inbox.activity("Flag", [ACTOR], content="later")
    assert (await inbox.post(later, now=inbox.clock())).status_code == 202
    assert later["id"] in {f.id for f in inbox.store.list_flags()}


def test_limits__docs_state_the_real_ones() -> None:
    # Given the Limits table of docs/federation.md
    text = (Path(__file__).parents[2] / "docs" / "federation.md").read_text()
    table = text.split("### Limits", 1)[1].split("\n#", 1)[0]
    lines = [line.split("|") for line in table.splitlines() if line.startswith("| ")]
    rows = {cells[1].strip(): cells[2] for cells in lines[1:]}  # after the heading row
    # Then each limit in it is the one the inbox applies
    expected = {
        "JSON nesting": MAX_NESTING,
        "Any id or URL the inbox reads or stores": MAX_ID_LENGTH,
        "A `type`": MAX_TYPE_LENGTH,
        "A reply's HTML": MAX_REPLY_CONTENT,
        "A report's comment": MAX_REPORT_CONTENT,
        "Objects named in one report": MAX_REPORT_OBJECTS,
        "The JSON kept beside a reply, like or report": MAX_RAW_JSON,
        "Reports per account": MAX_REPORTS_PER_HOUR,
    }
    for what, limit in expected.items():
        assert f" {limit:,} " in rows[what], (what, rows[what])
