"""The inbox's CLI commands on a real site and store: `followers`, `interactions`, `blocks`,
and `inbox serve` running as a process. Replies that approve/reject/remove send go to the
fake remote server of tests/inbox on 127.0.0.1 and are checked with verify_request."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from fedipress.app.keyfiles import generate_keys
from fedipress.cli.main import main
from fedipress.config import load_config
from fedipress.federation.keys import RSAPrivateKey, load_private_key
from fedipress.federation.store import Flag, Follower, Interaction, Store, open_store
from tests.inbox.harness import ACTOR, verify_blog_request
from tests.inbox.remote import RemoteServer, load_key, serve_in_thread

ROOT = Path(__file__).resolve().parents[1]
POST = "https://blog.example/posts/hello/"
SINCE = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
SITE = """
-- fedipress.yaml --
title: Inbox CLI
base_url: https://blog.example/
fediverse: {username: blog, manually_approves_followers: true}
"""


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
def site(make_site) -> Path:
    root = make_site(SITE)
    generate_keys(root, load_config(root))
    return root


@pytest.fixture
def blog_key(site: Path) -> RSAPrivateKey:
    return load_private_key((site / ".fedipress" / "private.pem").read_text())


@pytest.fixture
def store(site: Path) -> Iterator[Store]:
    """The store the commands use by default (SITE/.fedipress/inbox.db)."""
    opened = open_store(None, site)
    yield opened
    opened.close()


def follower(remote: RemoteServer, name: str, state: str) -> Follower:
    actor = remote.actor_id(name)
    return Follower(
        actor_id=actor,
        inbox=remote.inbox(name),
        shared_inbox=remote.shared_inbox,
        handle=f"{name}@127.0.0.1",
        follow_activity_id=f"{actor}#follows/{name}-1",
        state=state,  # type: ignore[arg-type]
        created_at=SINCE,
        updated_at=SINCE,
    )


@pytest.fixture
def seeded(store: Store, remote: RemoteServer) -> Store:
    """alice asked to follow (pending); bob follows (accepted)."""
    store.upsert_follower(follower(remote, "alice", "pending"))
    store.upsert_follower(follower(remote, "bob", "accepted"))
    return store


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


# --- followers list / export ---------------------------------------------------------------


def test_followers_list__accepted_by_default_pending_on_request(
    site: Path, seeded: Store, remote: RemoteServer
) -> None:
    accepted = run("followers", "list", str(site))
    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout.split() == [
        "bob@127.0.0.1",
        remote.actor_id("bob"),
        "since",
        "2024-05-01",
    ]
    assert accepted.stderr.splitlines() == [f"store: {site}/.fedipress/inbox.db", "1 followers"]
    pending = run("followers", "list", str(site), "--pending")
    assert pending.exit_code == 0
    assert remote.actor_id("alice") in pending.stdout
    assert remote.actor_id("bob") not in pending.stdout
    assert pending.stderr.endswith("\n1 pending\n")


def test_followers_list__json_lines(site: Path, seeded: Store, remote: RemoteServer) -> None:
    result = run("followers", "list", "--pending", "--json", str(site))
    assert result.exit_code == 0
    (line,) = result.stdout.splitlines()
    assert json.loads(line) == {
        "actor": remote.actor_id("alice"),
        "handle": "alice@127.0.0.1",
        "inbox": remote.inbox("alice"),
        "shared_inbox": remote.shared_inbox,
        "state": "pending",
        "since": "2024-05-01T09:30:00+00:00",
    }
    assert result.stderr == ""  # no count line mixed into machine-read output


def test_followers_export__csv_with_every_follower(
    site: Path, seeded: Store, remote: RemoteServer
) -> None:
    result = run("followers", "export", str(site))
    assert result.exit_code == 0
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert reader.fieldnames == ["actor", "handle", "inbox", "shared_inbox", "state", "since"]
    rows = {row["actor"]: row for row in reader}
    assert set(rows) == {remote.actor_id("alice"), remote.actor_id("bob")}
    alice = rows[remote.actor_id("alice")]
    assert alice["state"] == "pending" and alice["inbox"] == remote.inbox("alice")
    assert rows[remote.actor_id("bob")]["state"] == "accepted"
    assert datetime.fromisoformat(alice["since"]) == SINCE


# --- followers approve / reject / remove ---------------------------------------------------


def test_followers_approve__accepts_and_sends_a_signed_accept(
    site: Path,
    seeded: Store,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given alice's pending follow request, and deliveries allowed to reach 127.0.0.1
    monkeypatch.setenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "1")
    alice = remote.actor_id("alice")
    # When the owner approves it, ACTOR first and SITE after
    result = run("followers", "approve", alice, str(site))
    # Then alice is accepted and her inbox got an Accept embedding her Follow, signed by us
    assert result.exit_code == 0, result.output
    assert result.stdout == f"approved {alice}; sent the Accept\n"
    stored = seeded.get_follower(alice)
    assert stored is not None and stored.state == "accepted"
    (accept,) = remote.posts("/users/alice/inbox")
    document = accept.json()
    assert document["type"] == "Accept" and document["actor"] == ACTOR
    assert document["object"] == {
        "id": f"{alice}#follows/alice-1",
        "type": "Follow",
        "actor": alice,
        "object": ACTOR,
    }
    key_id = asyncio.run(verify_blog_request(accept, remote, blog_key, datetime.now(UTC)))
    assert key_id == f"{ACTOR}#main-key"


def test_followers_reject__site_defaults_to_the_current_folder(
    site: Path,
    seeded: Store,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the owner is in the site's folder
    monkeypatch.setenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "1")
    monkeypatch.chdir(site)
    alice = remote.actor_id("alice")
    # When they reject alice's request without naming the site
    result = run("followers", "reject", alice)
    # Then the request is gone and a signed Reject of her Follow reached her inbox
    assert result.exit_code == 0, result.output
    assert result.stdout == f"rejected {alice}; sent the Reject\n"
    assert seeded.get_follower(alice) is None
    (reject,) = remote.posts("/users/alice/inbox")
    assert reject.json()["type"] == "Reject"
    assert reject.json()["object"]["id"] == f"{alice}#follows/alice-1"
    asyncio.run(verify_blog_request(reject, remote, blog_key, datetime.now(UTC)))
    assert remote.posts("/users/bob/inbox") == []


def test_followers_remove__ends_an_accepted_follow_with_a_reject(
    site: Path,
    seeded: Store,
    remote: RemoteServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "1")
    bob = remote.actor_id("bob")
    result = run("followers", "remove", bob, str(site))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"removed {bob}; sent the Reject\n"
    assert seeded.get_follower(bob) is None
    assert seeded.count_followers() == 0
    (reject,) = remote.posts("/users/bob/inbox")
    assert reject.json()["type"] == "Reject"
    assert reject.json()["object"]["actor"] == bob


def test_followers_approve__unknown_actor_exit_1_with_hint(
    site: Path, seeded: Store, remote: RemoteServer
) -> None:
    result = run("followers", "approve", "https://social.example/users/nobody", str(site))
    assert result.exit_code == 1
    assert "no follower or follow request from 'https://social.example/users/nobody'" in (
        result.stderr
    )
    assert "fedipress followers list --pending" in result.stderr
    assert "Traceback" not in result.output
    assert remote.posts() == []
    assert seeded.count_followers(state=None) == 2


# --- interactions --------------------------------------------------------------------------


@pytest.fixture
def interactions(store: Store, remote: RemoteServer) -> dict[str, str]:
    """A like by bob, a pending reply by alice, and a report by bob; returns their ids."""
    like = f"{remote.actor_id('bob')}#likes/1"
    reply = f"{remote.actor_id('alice')}/statuses/1129"
    store.add_interaction(
        Interaction(like, "like", remote.actor_id("bob"), POST, published=SINCE), SINCE
    )
    store.add_interaction(
        Interaction(
            reply,
            "reply",
            remote.actor_id("alice"),
            POST,
            state="pending",
            content_html="<p>Nice post</p>",
            in_reply_to=POST,
            published=SINCE.replace(hour=10),
        ),
        SINCE,
    )
    store.add_flag(
        Flag(f"{remote.actor_id('bob')}#flags/1", remote.actor_id("bob"), "spam", (POST,), SINCE)
    )
    return {"like": like, "reply": reply}


def test_interactions_list__kinds_pending_and_reports(
    site: Path, interactions: dict[str, str], remote: RemoteServer
) -> None:
    every = run("interactions", "list", str(site))
    assert every.exit_code == 0
    assert every.stdout.splitlines() == [
        f"2024-05-01 09:30 like     approved {remote.actor_id('bob')} -> {POST}",
        f"2024-05-01 10:30 reply    pending  {remote.actor_id('alice')} -> {POST}",
        f"    {interactions['reply']}",
    ]
    likes = run("interactions", "list", "--kind", "like", str(site))
    assert likes.stdout.splitlines() == every.stdout.splitlines()[:1]
    pending = run("interactions", "list", "--pending", str(site))
    assert pending.stdout.splitlines() == every.stdout.splitlines()[1:]
    reports = run("interactions", "list", "--reports", str(site))
    assert (
        reports.stdout == f"2024-05-01 09:30 report from {remote.actor_id('bob')}: spam [{POST}]\n"
    )
    bad = run("interactions", "list", "--kind", "follow", str(site))
    assert bad.exit_code == 2


def test_interactions_approve__pending_reply_becomes_approved(
    site: Path, store: Store, interactions: dict[str, str]
) -> None:
    reply = interactions["reply"]
    result = run("interactions", "approve", reply, str(site))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"approved {reply}\n"
    stored = store.get_interaction(reply)
    assert stored is not None and stored.state == "approved"
    assert stored.content_html == "<p>Nice post</p>"


def test_interactions_reject__deletes_the_reply_only(
    site: Path, store: Store, interactions: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(site)
    result = run("interactions", "reject", interactions["reply"])
    assert result.exit_code == 0, result.output
    assert store.get_interaction(interactions["reply"]) is None
    assert store.get_interaction(interactions["like"]) is not None
    # A like is not a reply: refused with a hint, nothing removed
    refused = run("interactions", "reject", interactions["like"])
    assert refused.exit_code == 1
    assert "fedipress interactions list --pending" in refused.stderr
    assert "Traceback" not in refused.output
    assert store.get_interaction(interactions["like"]) is not None


def test_interactions_hide_approve_delete__by_address_and_by_actor(
    site: Path, store: Store, interactions: dict[str, str], remote: RemoteServer
) -> None:
    reply = interactions["reply"]
    alice, bob = remote.actor_id("alice"), remote.actor_id("bob")
    store.update_interaction(
        replace(store.get_interaction(reply), url="https://a.example/@alice/1129")  # type: ignore[type-var]
    )
    store.add_interaction(
        Interaction(f"{alice}/statuses/2", "reply", alice, POST, "pending", "<p>2</p>"), SINCE
    )
    # hide by its web address: kept, hidden
    hidden = run("interactions", "hide", "https://a.example/@alice/1129", str(site))
    assert hidden.exit_code == 0, hidden.output
    assert hidden.stdout == f"hid {reply}\n"
    assert store.get_interaction(reply).state == "hidden"  # type: ignore[union-attr]
    listed = run("interactions", "list", "--hidden", str(site))
    assert f"    {reply}" in listed.stdout.splitlines()
    # approve everything alice sent: both replies shown
    approved = run("interactions", "approve", "--actor", alice, str(site))
    assert approved.exit_code == 0, approved.output
    assert [i.state for i in store.list_interactions(actor_id=alice)] == ["approved"] * 2
    # delete everything bob sent: his like goes
    deleted = run("interactions", "delete", "--actor", bob, str(site))
    assert deleted.exit_code == 0, deleted.output
    assert store.list_interactions(actor_id=bob) == []
    # nothing from an unknown account: a clear error
    unknown = run("interactions", "delete", "--actor", "https://x.example/u/x", str(site))
    assert unknown.exit_code == 1 and "nothing stored from" in unknown.stderr


def test_interactions_approve__a_private_reply_is_refused(
    site: Path, store: Store, remote: RemoteServer
) -> None:
    alice = remote.actor_id("alice")
    private = f"{alice}/statuses/dm"
    store.add_interaction(
        Interaction(private, "reply", alice, POST, "pending", "<p>dm</p>", public=False), SINCE
    )
    listed = run("interactions", "list", "--pending", str(site))
    assert "pending (not public)" in listed.stdout
    refused = run("interactions", "approve", private, str(site))
    assert refused.exit_code == 1 and "not public" in refused.stderr
    assert store.get_interaction(private).state == "pending"  # type: ignore[union-attr]


def test_interactions_approve__calls_the_build_hook(
    site: Path, store: Store, interactions: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hits: list[str] = []

    async def hook(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            hits.append(scope["method"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    with serve_in_thread(hook) as server:
        url = f"http://127.0.0.1:{server.port}/hook"  # type: ignore[attr-defined]
        monkeypatch.setenv("FEDIPRESS_BUILD_HOOK_URL", url)
        monkeypatch.setenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "1")
        result = run("interactions", "approve", interactions["reply"], str(site))
    assert result.exit_code == 0, result.output
    assert hits == ["POST"]


# --- blocks --------------------------------------------------------------------------------


def test_blocks_add__actor_url_and_domain_then_list(
    site: Path, seeded: Store, remote: RemoteServer
) -> None:
    bob = remote.actor_id("bob")
    actor = run("blocks", "add", bob, str(site))
    assert actor.exit_code == 0, actor.output
    assert actor.stdout == f"blocked actor {bob}\n"
    # bob follows the blog: the block does not end that, and the command says how to
    assert f"fedipress followers remove {bob}" in actor.stderr
    domain = run("blocks", "add", "Spam.Example:8443", str(site))
    assert domain.stdout == "blocked domain spam.example\n"
    again = run("blocks", "add", "spam.example", str(site))
    assert again.exit_code == 0 and again.stdout == "already blocked domain spam.example\n"
    # The store now drops what they send: bob himself, and any account under the domain
    assert seeded.is_blocked(bob)
    assert seeded.is_blocked("https://a.spam.example/users/x")
    assert not seeded.is_blocked(remote.actor_id("alice"))
    listed = run("blocks", "list", str(site))
    assert listed.exit_code == 0
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    assert listed.stdout.splitlines() == [
        f"actor  {bob}  since {today}",
        f"domain spam.example  since {today}",
    ]
    assert listed.stderr.endswith("\n2 blocked\n")


def test_blocks_remove__lifts_a_block_and_refuses_an_unknown_one(
    site: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(site)
    assert run("blocks", "add", "spam.example").exit_code == 0
    removed = run("blocks", "remove", "spam.example")
    assert removed.exit_code == 0 and removed.stdout == "unblocked domain spam.example\n"
    assert store.list_blocks() == []
    missing = run("blocks", "remove", "https://social.example/users/x")
    assert missing.exit_code == 1
    assert "no block of actor 'https://social.example/users/x'" in missing.stderr
    assert "fedipress blocks list" in missing.stderr


@pytest.mark.parametrize("value", ["@spammer@spam.example", "spam.example/users/x", "localhost"])
def test_blocks_add__neither_url_nor_domain_exit_1(site: Path, store: Store, value: str) -> None:
    result = run("blocks", "add", value, str(site))
    assert result.exit_code == 1
    assert "is neither an actor URL nor a domain" in result.stderr
    assert "Traceback" not in result.output
    assert store.list_blocks() == []


# --- inbox serve ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_inbox_serve__serves_health_and_stops_cleanly_on_sigint(site: Path) -> None:
    # Given `fedipress inbox serve` started as its own process on a free port
    port = _free_port()
    command = [sys.executable, "-m", "fedipress", "inbox", "serve", str(site)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # When a client asks for /ap/health
        health = None
        deadline = time.monotonic() + 10
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            while health is None:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "inbox serve did not start"
                try:
                    health = client.get("/ap/health", timeout=1)
                except httpx.TransportError:
                    time.sleep(0.05)
        # Then the inbox answers with its store's state
        assert health.status_code == 200
        assert health.json() == {
            "status": "ok",
            "store": "ok",
            "queue": {"pending": 0, "dead": 0},
            "build_hook": "off",
        }
        # When it gets SIGINT (Ctrl-C), Then it shuts down cleanly: lifespan ran, exit code 0
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "inbox for blog@blog.example" in err
        assert "Application shutdown complete" in err
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


# --- inbox serve: slow and oversized bodies ------------------------------------------------


@contextmanager
def running_inbox(site: Path, *options: str) -> Iterator[int]:
    """`fedipress inbox serve` as its own process on a free port, answering; yields the port."""
    port = _free_port()
    command = [sys.executable, "-m", "fedipress", "inbox", "serve", str(site), "-q"]
    process = subprocess.Popen(
        [*command, "--port", str(port), *options],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            while True:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "inbox serve did not start"
                try:
                    client.get("/ap/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _post_head(port: int, length: int, body: bytes = b"") -> socket.socket:
    """A connection that sent a POST announcing `length` bytes of body, and `body`."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(30)
    head = (
        f"POST /ap/inbox HTTP/1.1\r\nHost: blog.example\r\n"
        f"Content-Type: application/activity+json\r\nContent-Length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def _answer(sock: socket.socket) -> tuple[int, str]:
    """The status and header block of the response on `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return int(head.split(" ", 2)[1]), head.lower()


def _closed(sock: socket.socket) -> bool:
    """True once the server closed the connection (whatever was left unread)."""
    while True:
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True


def test_inbox_serve__a_slow_body_gets_408_and_a_huge_one_413_at_once(site: Path) -> None:
    with running_inbox(site, "--body-timeout", "1") as port:
        # When a client announces 1,000 bytes and sends 5
        started = time.monotonic()
        with _post_head(port, 1000, b"12345") as slow:
            # Then it gets 408 once the 1 s deadline passed (10 s: a generous bound), and the
            # connection is closed
            status, head = _answer(slow)
            assert status == 408 and "connection: close" in head
            assert time.monotonic() - started < 10
            assert _closed(slow)
        # When a client announces a 1 GB body
        with _post_head(port, 1_000_000_000) as huge:
            # Then it is refused before anything is read: 413, not the deadline's 408
            status, head = _answer(huge)
            assert status == 413 and "connection: close" in head
            assert _closed(huge)


def test_inbox_serve__slow_bodies_do_not_stop_other_requests(site: Path) -> None:
    with running_inbox(site, "--body-timeout", "5") as port, ExitStack() as closing:
        # Given 80 connections that announce a 1 MB body (the limit) and send 5 bytes
        slow = [_post_head(port, 1_000_000, b"12345") for _ in range(80)]
        for sock in slow:
            closing.callback(sock.close)
        # When other clients ask something meanwhile
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            health = client.get("/ap/health", timeout=10)
            post = client.post(
                "/ap/inbox",
                content=b"{}",
                headers={"Content-Type": "application/activity+json"},
                timeout=10,
            )
        # Then they are answered: the health check, and the unsigned POST refused for itself
        assert health.status_code == 200
        assert post.status_code == 401
        # and of the slow ones, 64 were read until the deadline (408), the rest refused at
        # once with a hint when to come back (503, Retry-After)
        answers = [_answer(sock) for sock in slow]
        assert sorted(status for status, _ in answers) == [408] * 64 + [503] * 16
        assert all("retry-after: 10" in head for status, head in answers if status == 503)
        assert all(_closed(sock) for sock in slow)


# --- a closed pipe --------------------------------------------------------------------------


def _piped(site: Path, command: str, reader: str) -> tuple[str, int, str]:
    """`fedipress COMMAND SITE | READER` in bash: (what the reader printed, fedipress's exit
    code, fedipress's standard error)."""
    script = f'"$0" -m fedipress.cli {command} "$1" 2>"$2" | {reader}; echo "${{PIPESTATUS[0]}}"'
    errors = site / "stderr.txt"
    done = subprocess.run(
        ["bash", "-c", script, sys.executable, str(site), str(errors)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    *lines, status = done.stdout.splitlines()
    # The line naming the store is information, not an error.
    said = "".join(
        line for line in errors.read_text().splitlines(True) if not line.startswith("store: ")
    )
    return "\n".join(lines), int(status), said


def test_cli__a_closed_pipe_ends_quietly(site: Path, store: Store, remote: RemoteServer) -> None:
    # Given listings far longer than a pipe holds (64 KiB)
    long = "x" * 200
    inboxes = [f"{remote.base}/{long}/{n}/inbox" for n in range(2000)]
    store.enqueue(f"{POST}#create", inboxes, "{}", SINCE)
    likers = [f"{remote.actor_id('bob')}/{long}/{n}" for n in range(1000)]
    for liker in likers:
        store.add_interaction(Interaction(f"{liker}#likes/1", "like", liker, POST), SINCE)
    store.add_block("domain", "spam.example", SINCE)
    for command, first_line in (
        ("queue --limit 2000", "pending 2000, done 0, dead 0"),
        ("interactions list", f"- like     approved {likers[0]} -> {POST}"),
    ):
        # When they are piped into `head -1`, which leaves after the first line
        shown, status, errors = _piped(site, command, "head -1")
        # Then the reader got its line, and fedipress ended quietly on the closed pipe,
        # with the exit code of a process stopped by SIGPIPE
        assert shown == first_line, command
        assert status == 141, (command, errors)
        assert errors == "", command
    # When the reader leaves without reading anything, and the output is small enough that
    # it fails only in the final flush
    _shown, status, errors = _piped(site, "blocks list", "true")
    # Then that ends quietly too
    assert status in (0, 141) and errors == ""


# --- which folder, which store -------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["followers", "list"],
        ["followers", "export"],
        ["interactions", "list"],
        ["blocks", "list"],
        ["blocks", "add", "spam.example"],
        ["queue"],
        ["deliver"],
    ],
)
def test_store_commands__refuse_a_folder_that_is_not_a_site(tmp_path: Path, command) -> None:
    folder = tmp_path / "just-a-folder"
    folder.mkdir()
    result = run(*command, str(folder))
    assert result.exit_code == 1, result.output
    assert "no fedipress.yaml" in result.stderr and "Traceback" not in result.stderr
    assert list(folder.iterdir()) == []  # no .fedipress/inbox.db made there


def test_store_commands__refuse_a_site_without_fediverse(make_site) -> None:
    root = make_site("-- fedipress.yaml --\ntitle: T\nbase_url: https://b.example/\n", "plain")
    result = run("followers", "list", str(root))
    assert result.exit_code == 1 and "no 'fediverse' section" in result.stderr
    assert not (root / ".fedipress").exists()


def test_followers_list__the_preview_store_is_named_and_reachable(
    site: Path, remote: RemoteServer
) -> None:
    # Given a follower of the preview (`fedipress serve` keeps its own store)
    preview = open_store("sqlite:.fedipress/serve-inbox.db", site)
    preview.upsert_follower(follower(remote, "bob", "accepted"))
    preview.close()
    # When the site's followers are listed
    listed = run("followers", "list", str(site))
    # Then the command says which store it read, and where the preview's followers are
    assert listed.exit_code == 0
    assert f"store: {site}/.fedipress/inbox.db" in listed.stderr
    assert "0 followers" in listed.stderr
    assert "--preview" in listed.stderr and "serve-inbox.db" in listed.stderr
    # and --preview lists them
    shown = run("followers", "list", "--preview", str(site))
    assert shown.exit_code == 0
    assert remote.actor_id("bob") in shown.stdout
    assert f"store: {site}/.fedipress/serve-inbox.db" in shown.stderr
    deliveries = run("queue", "--preview", str(site))
    assert deliveries.exit_code == 0 and "serve-inbox.db" in deliveries.stderr
