"""Remote text reaches the operator only defanged: terminal escape codes and bidi controls in
handles, ids and report texts arrive through real signed activities, and the CLI prints them
escaped; `followers export` writes no cell a spreadsheet would run; a reply's link is stored
only when it is an http(s) URL."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner, Result

from fedipress.cli import main
from tests.inbox.harness import POST, Inbox

# A window title change, a screen clear, a bell and a right-to-left override.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")

pytestmark = pytest.mark.anyio


def run(inbox: Inbox, *args: str) -> Result:
    """A CLI command on the inbox's own store (FEDIPRESS_DATABASE_URL), as an operator runs it."""
    env = {"FEDIPRESS_DATABASE_URL": inbox.db.url}
    config = inbox.db.site_dir / "fedipress.yaml"  # the commands refuse a folder that is no site
    if not config.exists():
        config.write_text(
            "title: T\nbase_url: https://blog.example/\nfediverse: {username: blog}\n"
        )
    result = CliRunner().invoke(main, [*args, str(inbox.db.site_dir)], env=env)
    assert result.exit_code == 0, result.output
    return result


def note(inbox: Inbox, number: int, **fields: object) -> dict[str, object]:
    actor = inbox.remote.actor_id("alice")
    return {
        "id": f"{actor}/statuses/{number}",
        "type": "Note",
        "attributedTo": actor,
        "inReplyTo": POST,
        "content": "<p>hi</p>",
        **fields,
    }


async def test_cli__prints_remote_control_characters_escaped(inbox: Inbox) -> None:
    alice = inbox.remote.actor_id("alice")
    # Given alice, whose name and inbox URL are full of escape codes, follows; her reply's
    # id and her report's text carry them too, all signed with her real key
    inbox.remote.actor_changes["alice"] = {
        "preferredUsername": HOSTILE,
        "inbox": f"{inbox.remote.inbox('alice')}?{HOSTILE}",
    }
    assert (await inbox.post(inbox.follow())).status_code == 202
    reply = note(inbox, 1) | {"id": f"{alice}/statuses/{HOSTILE}"}
    assert (await inbox.post(inbox.activity("Create", reply))).status_code == 202
    flag = inbox.activity("Flag", [POST], content=f"spam {HOSTILE}")
    assert (await inbox.post(flag)).status_code == 202
    # and they were stored as received (the store keeps the data; printing defangs it)
    (follower,) = inbox.store.list_followers(state=None)
    assert follower.handle is not None and "\x1b" in follower.handle
    assert inbox.store.list_flags()[0].content == f"spam {HOSTILE}"
    inbox.store.add_block("actor", f"{alice}/{HOSTILE}", inbox.clock())
    # When the operator lists them with every command that prints remote text
    commands = [
        ("followers", "list"),
        ("followers", "export"),
        ("interactions", "list"),
        ("interactions", "list", "--reports"),
        ("blocks", "list"),
        ("-v", "queue", "--limit", "1000"),
    ]
    for command in commands:
        result = run(inbox, *command)
        # Then no raw control character reaches the terminal, but the text is there, escaped
        for raw in RAW:
            assert raw not in result.stdout + result.stderr, (command, raw)
        assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil" in result.stdout, command


async def test_followers_export__neutralises_formula_cells(inbox: Inbox) -> None:
    # Given followers whose names a spreadsheet would run as formulas
    formulas = {"alice": '=HYPERLINK("http://127.0.0.1/x","click")', "bob": "@SUM(1+1)"}
    for name, username in formulas.items():
        inbox.remote.actor_changes[name] = {"preferredUsername": username}
        assert (await inbox.post(inbox.follow(name), actor=name)).status_code == 202
    # When they are exported
    rows = list(csv.DictReader(io.StringIO(run(inbox, "followers", "export").stdout)))
    # Then each such cell starts with a quote, the rest of it unchanged
    handles = {row["handle"] for row in rows}
    port = inbox.remote.port
    assert handles == {f"'{username}@127.0.0.1:{port}" for username in formulas.values()}
    assert all(row["actor"].startswith("http://127.0.0.1:") for row in rows)


async def test_reply__keeps_only_an_http_url(inbox: Inbox) -> None:
    alice = inbox.remote.actor_id("alice")
    cases = {
        1: ("javascript:alert(document.cookie)", None),
        2: ([{"type": "Link", "href": "data:text/html,<script>alert(1)</script>"}], None),
        3: (" javascript:alert(1)", None),
        6: (f"{alice}/statuses/6", f"{alice}/statuses/6"),
        7: ([{"type": "Link", "href": "HTTPS://127.0.0.1/@alice/7"}], "HTTPS://127.0.0.1/@alice/7"),
    }
    for number, (url, _) in cases.items():
        # When alice replies with this url
        created = inbox.activity("Create", note(inbox, number, url=url))
        assert (await inbox.post(created)).status_code == 202, url
    # And a url that is no URL at all refuses the reply (400, naming it), storing nothing
    for number, url in ((4, "http://["), (5, {"type": "Link", "href": {"nested": "object"}})):
        broken = await inbox.post(inbox.activity("Create", note(inbox, number, url=url)))
        assert broken.status_code == 400 and "url" in broken.text, url
    # Then only http(s) URLs are stored as the reply's link
    stored = {item.id: item.url for item in inbox.store.list_interactions(kind="reply")}
    assert stored == {f"{alice}/statuses/{n}": kept for n, (_, kept) in cases.items()}
    # When an edit tries to swap a good link for a script
    edit = note(inbox, 6, url="javascript:alert(1)", updated="2030-01-01T00:00:00Z")
    assert (await inbox.post(inbox.activity("Update", edit))).status_code == 202
    # Then the good link stays
    assert inbox.store.get_interaction(f"{alice}/statuses/6").url == f"{alice}/statuses/6"
