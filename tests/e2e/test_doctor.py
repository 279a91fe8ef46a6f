"""`fedipress doctor` end to end, as a subprocess against real servers on 127.0.0.1:
`fedipress serve` (every check passes), a plain `python -m http.server` serving the built
folder without its host rules (media types, CORS, 410 and the inbox fail, with the hints for
that server), a reverse proxy that mangles the inbox's path, and one whose clock is off."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import TIMEOUT, Serve

from fedipress.app.keyfiles import generate_keys, generate_missing_keys
from fedipress.config import load_config
from fedipress.federation.signatures import format_http_date
from tests.inbox.remote import serve_in_thread

EXAMPLE = Path(__file__).parent.parent.parent / "example-site"
REMOVED = "an-old-post"
NEWEST = "ten-line-backup-script"  # the newest post of the example site
FEDIPRESS = (sys.executable, "-m", "fedipress")


def make_site(root: Path) -> Path:
    """The example site with its own key pair (so `serve` publishes the site's key) and one
    removed post in published-ids.json (so its id answers 410 with a Tombstone)."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("_site", ".fedipress"))
    generate_keys(root, load_config(root), force=True)
    record = root / "published-ids.json"
    data = json.loads(record.read_text())
    data["ids"][REMOVED] = {
        "type": "Note",
        "published": "2023-01-05T10:00:00+00:00",
        "deleted": "2024-02-01T10:00:00+00:00",
    }
    record.write_text(json.dumps(data, indent=2))
    return root


@dataclass
class Doctored:
    code: int
    out: str
    err: str

    def report(self) -> dict[str, Any]:
        return json.loads(self.out)

    def checks(self, status: str) -> dict[str, dict[str, str]]:
        return {c["id"]: c for c in self.report()["checks"] if c["status"] == status}


def doctor(*args: str, env: dict[str, str] | None = None) -> Doctored:
    done = subprocess.run(
        [*FEDIPRESS, "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
    )
    return Doctored(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_site(tmp_path_factory.mktemp("doctor") / "site")


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[Serve]:
    serve = Serve(site, "--no-reload").start()
    yield serve
    serve.stop()


# --- fedipress serve: a deployment done right -------------------------------------------------


def test_doctor__serve_passes_every_check(site: Path, served: Serve) -> None:
    # When the doctor checks the site folder at the preview's address
    result = doctor(str(site), "--base-url", served.url, "--allow-private")
    # Then every check passes, one line each, and it exits 0
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert lines[0] == f"Checking {served.url}"
    assert all(line.startswith("✓ ") for line in lines[1:-1]), result.out
    assert re.fullmatch(r"\d+ passed, 0 failed, 0 skipped: the deployment looks right", lines[-1])
    for seen in (
        "the inbox answers as the inbox",
        f"the removed post /ap/posts/{REMOVED} is served right: 410",
        "a GET signed with the site's key is served and verifies",
        "the actor publishes the site's public key",
        "the inbox's clock agrees",
        "the delivery hook is routed to the inbox: off (CRON_SECRET is not set)",
        "the interactions document is served through the site: ",
        "the inbox calls the site's build hook when it must: off",
    ):
        assert seen in result.out
    # And it read only: it never opened the site's own store
    assert not (site / ".fedipress" / "inbox.db").exists()


def test_doctor__json_report_for_ci(served: Serve) -> None:
    # When the doctor checks the URL alone (the account is read from the site), as JSON
    result = doctor(served.url, "--allow-private", "--json")
    assert result.code == 0, result.out + result.err
    report = result.report()
    # Then the report says what passed, and skips what needs the site folder
    assert report["url"] == served.url and report["ok"] is True
    summary = report["summary"]
    assert summary["fail"] == 0 and summary["pass"] == len(result.checks("pass")) > 30
    assert set(result.checks("skip")) == {"actor.key", "tombstone", "signed-get"}
    assert {"id", "title", "status", "detail", "fix"} == set(report["checks"][0])
    assert result.checks("pass")["site.account"]["detail"].startswith("@mara@127.0.0.1:")


def test_doctor__a_private_address_needs_the_opt_in(served: Serve) -> None:
    refused = doctor(served.url)
    assert refused.code == 1 and refused.out == ""
    assert "not checking" in refused.err and "loopback" in refused.err
    assert "--allow-private" in refused.err and "Traceback" not in refused.err
    allowed = doctor(served.url, "-q", env={"FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1"})
    assert allowed.code == 0, allowed.out + allowed.err


def test_doctor__a_site_built_from_the_inbox_s_document_needs_the_build_hook(
    site: Path, served: Serve, tmp_path: Path
) -> None:
    # Given the same site, configured to be built elsewhere from the inbox's public document
    elsewhere = tmp_path / "site"
    shutil.copytree(site, elsewhere, ignore=shutil.ignore_patterns("_site", "*.db*", "cache"))
    with (elsewhere / "fedipress.yaml").open("a", encoding="utf-8") as config:
        config.write(f"  interactions_from: {served.url}ap/interactions\n")
    # When the doctor checks it against an inbox without FEDIPRESS_BUILD_HOOK_URL
    result = doctor(str(elsewhere), "--base-url", served.url, "--allow-private", "--json")
    # Then only the build hook fails: new replies would wait for another build
    assert result.code == 1, result.out + result.err
    failed = result.checks("fail")
    assert set(failed) == {"build-hook"}, failed
    assert "built from the inbox's public document" in failed["build-hook"]["detail"]
    assert "FEDIPRESS_BUILD_HOOK_URL" in failed["build-hook"]["fix"]
    # and the document itself is served right, through the site's own path
    assert result.checks("pass")["interactions"]["detail"].endswith("replies shown")


def test_doctor__an_inbox_with_its_build_hook_set(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an inbox that has a build hook (the URL is never called: nothing changes)
    copy = tmp_path / "site"
    shutil.copytree(site, copy, ignore=shutil.ignore_patterns("_site", "*.db*", "cache"))
    monkeypatch.setenv("FEDIPRESS_BUILD_HOOK_URL", "http://127.0.0.1:9/build_hooks/secret")
    serve = Serve(copy, "--no-reload").start()
    try:
        result = doctor(str(copy), "--base-url", serve.url, "--allow-private", "--json")
    finally:
        serve.stop()
    # Then the doctor sees it on, without ever seeing its URL
    assert result.code == 0, result.out + result.err
    check = result.checks("pass")["build-hook"]
    assert check["detail"] == "on (FEDIPRESS_BUILD_HOOK_URL is set)"
    assert "secret" not in result.out


# --- a plain file server: no host rules, no inbox ---------------------------------------------


@contextmanager
def plain_file_server(site: Path, out: Path) -> Iterator[str]:
    """`python -m http.server` on a free port, serving the site built for that address."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=out,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = re.search(r"port (\d+)", line)
        assert port, line
        url = f"http://127.0.0.1:{port.group(1)}/"
        built = subprocess.run(
            [*FEDIPRESS, "build", str(site), "-q", "--base-url", url, "-o", str(out / "site")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert built.returncode == 0, built.stderr
        for item in (out / "site").iterdir():  # serve the built folder at the root
            item.rename(out / item.name)
        yield url
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def plain_server(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with plain_file_server(site, tmp_path_factory.mktemp("plain")) as url:
        yield url


def test_doctor__plain_file_server_fails_types_cors_410_and_inbox(
    site: Path, plain_server: str
) -> None:
    result = doctor(str(site), "--base-url", plain_server, "--allow-private", "--json")
    assert result.code == 1, result.err
    failed = result.checks("fail")
    report = result.report()
    assert report["ok"] is False and report["host"] == "a plain file server (Python's http.server)"
    # The media types and CORS: each document, with the hint for this server
    for id in ("webfinger", "actor", "outbox", "post", "nodeinfo.2.1", "host-meta"):
        assert id in failed, id
        assert "ignores `_headers`" in failed[id]["fix"]
    assert "'application/octet-stream', not application/activity+json" in failed["actor"]["detail"]
    assert "no `Access-Control-Allow-Origin: *`" in failed["webfinger"]["detail"]
    # The removed post is a plain 404, and no inbox answers
    assert "404" in failed["tombstone"]["detail"] and "410 Gone" in failed["tombstone"]["fix"]
    assert "from the static host, not the inbox" in failed["inbox"]["detail"]
    assert "has no inbox" in failed["inbox"]["fix"]
    # What the file server does get right passes: the content of every document
    passed = result.checks("pass")
    assert {"actor.content", "webfinger.content", "post.content", "actor.key"} <= set(passed)
    assert {"clock", "deploy-hook", "deliver-hook"} <= set(result.checks("skip"))
    assert {"interactions", "build-hook"} <= set(result.checks("skip"))


def test_doctor__plain_file_server_human_output(site: Path, plain_server: str) -> None:
    result = doctor(str(site), "--base-url", plain_server, "--allow-private", "-q")
    assert result.code == 1
    lines = result.out.splitlines()
    assert all(line.startswith("✗ ") for line in lines[:-1])
    assert any("→ fix: this plain file server ignores `_headers`" in line for line in lines)
    assert re.fullmatch(r"\d+ passed, \d+ failed, \d+ skipped", lines[-1])


# --- topic accounts (fediverse.accounts) ---------------------------------------------------------

TOPICS = ("bread", "code")


@pytest.fixture(scope="module")
def topic_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example site with two topic accounts and their key pairs."""
    root = make_site(tmp_path_factory.mktemp("doctor-topics") / "site")
    with (root / "fedipress.yaml").open("a", encoding="utf-8") as config:
        config.write(
            "  accounts:\n"
            "    - {username: bread, tags: [bread, cooking]}\n"
            "    - {username: code, tags: [programming]}\n"
        )
    generate_missing_keys(root, load_config(root))
    return root


def test_doctor__serve_passes_every_topic_account_check(topic_site: Path) -> None:
    serve = Serve(topic_site, "--no-reload").start()
    try:
        result = doctor(str(topic_site), "--base-url", serve.url, "--allow-private", "--json")
    finally:
        serve.stop()
    assert result.code == 0, result.out + result.err
    assert result.checks("fail") == {} and result.checks("skip") == {}
    passed = result.checks("pass")
    for name in TOPICS:
        for check in ("webfinger", "webfinger.subject", "actor", "actor.content", "key"):
            assert f"topic.{name}.{check}" in passed, (name, check)
        assert f"topic.{name}.followers.content" in passed
        assert passed[f"topic.{name}.webfinger.subject"]["detail"].endswith(
            f"/ap/topics/{name}/actor"
        )


def test_doctor__static_webfinger_cannot_answer_for_topic_accounts(
    topic_site: Path, tmp_path: Path
) -> None:
    # A plain file server answers every handle with the main account's JRD, and serves the
    # topic accounts' documents without their media type
    with plain_file_server(topic_site, tmp_path) as url:
        result = doctor(str(topic_site), "--base-url", url, "--allow-private", "--json")
    assert result.code == 1
    failed, passed = result.checks("fail"), result.checks("pass")
    for name in TOPICS:
        subject = failed[f"topic.{name}.webfinger.subject"]
        assert "subject 'acct:mara@127.0.0.1:" in subject["detail"]
        assert "route `/.well-known/webfinger` to the inbox" in subject["fix"]
        for check in ("actor", "followers"):
            assert "not application/activity+json" in failed[f"topic.{name}.{check}"]["detail"]
            assert "ignores `_headers`" in failed[f"topic.{name}.{check}"]["fix"]
        # what a static host can serve of a topic account: its actor's content and key
        assert {f"topic.{name}.actor.content", f"topic.{name}.key"} <= set(passed)


# --- proxies in front of the inbox ------------------------------------------------------------


@dataclass
class Proxy:
    """A reverse proxy on 127.0.0.1 in front of `fedipress serve`, which can mangle the inbox's
    path (a stray trailing slash, as a mistyped `proxy_pass` adds) and sets its own `Date`
    from a clock that may be off."""

    upstream: str = ""
    mangle_inbox: bool = False
    clock_offset: timedelta = timedelta(0)
    static: tuple[str, ...] = ()  # paths it serves as a static host would: a 404 page

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["raw_path"].decode()
        if path in self.static:
            page = b"<h1>Not Found</h1>"
            headers = [(b"content-type", b"text/html"), (b"content-length", b"18")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": page})
            return
        if self.mangle_inbox and path == "/ap/inbox":
            path += "/"
        query = scope["query_string"].decode()
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.lower() not in (b"content-length", b"connection")
        ]
        async with httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client:
            answer = await client.request(
                scope["method"],
                self.upstream.rstrip("/") + path + (f"?{query}" if query else ""),
                headers=headers,
                content=body,
            )
        dropped = (b"content-length", b"content-encoding", b"transfer-encoding", b"date")
        raw = [(k, v) for k, v in answer.headers.raw if k.lower() not in dropped]
        raw.append((b"date", format_http_date(datetime.now(UTC) + self.clock_offset).encode()))
        raw.append((b"content-length", str(len(answer.content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": raw})
        await send({"type": "http.response.body", "body": answer.content})


@pytest.fixture(scope="module")
def proxied(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, str]]:
    """`fedipress serve` built for the proxy's address (ids are the proxy's URLs), behind it."""
    copy = make_site(tmp_path_factory.mktemp("proxied") / "site")
    proxy = Proxy()
    with serve_in_thread(proxy, date_header=False) as server:
        url = f"http://127.0.0.1:{server.port}/"  # type: ignore[attr-defined]
        serve = Serve(copy, "--no-reload", "--base-url", url).start()
        proxy.upstream = serve.url  # the address it listens on, whatever its base URL
        try:
            yield proxy, url
        finally:
            serve.stop()


def test_doctor__a_proxy_that_mangles_the_inbox_path(proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    proxy.mangle_inbox, proxy.clock_offset = True, timedelta(0)
    result = doctor(url, "--allow-private", "--json")
    # Then the inbox check fails, naming the proxy's path handling; nothing else does
    assert result.code == 1, result.err
    failed = result.checks("fail")
    assert set(failed) == {"inbox"}, failed
    assert "404" in failed["inbox"]["detail"]
    assert "got another path than the one requested" in failed["inbox"]["fix"]
    assert {"deploy-hook", "deliver-hook", "clock"} <= set(result.checks("skip"))


def test_doctor__an_inbox_with_a_skewed_clock(proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    proxy.mangle_inbox, proxy.clock_offset = False, timedelta(hours=2)
    result = doctor(url, "--allow-private", "--json")
    assert result.code == 1, result.err
    failed = result.checks("fail")
    assert set(failed) == {"clock"}, failed
    # (HTTP dates have whole seconds: the skew seen is two hours, less a fraction)
    assert re.search(r"(2 h 0|1 h 59) min ahead of this machine's", failed["clock"]["detail"])
    assert "NTP" in failed["clock"]["fix"]
    # And the same proxy with a right clock passes everything
    proxy.clock_offset = timedelta(0)
    assert doctor(url, "--allow-private", "-q").code == 0


def test_doctor__a_proxy_without_the_interactions_rule(proxied: tuple[Proxy, str]) -> None:
    # Given proxy rules written before conversations: /ap/interactions stays on the static host
    proxy, url = proxied
    proxy.mangle_inbox, proxy.clock_offset, proxy.static = (
        False,
        timedelta(0),
        ("/ap/interactions",),
    )
    try:
        result = doctor(url, "--allow-private", "--json")
    finally:
        proxy.static = ()
    # Then the interactions check fails, and only it
    assert result.code == 1, result.err
    failed = result.checks("fail")
    assert set(failed) == {"interactions"}, failed
    assert "404" in failed["interactions"]["detail"]
    assert "from the static host, not the inbox" in failed["interactions"]["detail"]


def test_doctor__a_deployed_key_that_is_not_the_sites(
    site: Path, proxied: tuple[Proxy, str]
) -> None:
    # Given a deployment made with another key pair than the one in this site folder
    proxy, url = proxied
    proxy.mangle_inbox, proxy.clock_offset = False, timedelta(0)
    # When the doctor checks it with this folder's keys
    result = doctor(str(site), "--base-url", url, "--allow-private", "--json")
    # Then the published key and the signed GET fail, and nothing else
    assert result.code == 1, result.err
    failed = result.checks("fail")
    assert set(failed) == {"actor.key", "signed-get"}, failed
    assert "another key" in failed["actor.key"]["detail"]
    assert "does not verify" in failed["signed-get"]["detail"]
    assert "FEDIPRESS_PRIVATE_KEY" in failed["signed-get"]["fix"]


# --- Articles, and published-ids.json with versions and edit times -----------------------------


def test_doctor__an_article_blog_with_an_edited_and_a_removed_post(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given a site that publishes Articles (the title line in `content`, `summary` only for a
    # content warning), whose newest post was edited since it was recorded, and whose record
    # keeps versions and edit times, for the removed post too
    site = make_site(tmp_path_factory.mktemp("doctor-article") / "site")
    config = site / "fedipress.yaml"
    config.write_text(config.read_text().replace("post_type: Note", "post_type: Article"))
    record = site / "published-ids.json"
    data = json.loads(record.read_text())
    for entry in data["ids"].values():
        entry["type"] = "Article"
    data["ids"][NEWEST] |= {"version": "sha256:before"}
    data["ids"][REMOVED] |= {"version": "sha256:old", "edited": "2023-06-01T10:00:00+00:00"}
    record.write_text(json.dumps(data, indent=2))
    serve = Serve(site, "--no-reload").start()
    try:
        # When the doctor checks it
        result = doctor(str(site), "--base-url", serve.url, "--allow-private", "--json")
        newest = httpx.get(
            f"{serve.url}ap/posts/{NEWEST}",
            headers={"Accept": "application/activity+json"},
            timeout=TIMEOUT,
        ).json()
    finally:
        serve.stop()
    # Then every check passes: the Article form, its edit time and the removed id's Tombstone
    assert result.code == 0, result.out + result.err
    assert not result.checks("fail") and not result.checks("skip")
    passed = result.checks("pass")
    assert f"/ap/posts/{NEWEST}" in passed["post"]["title"] + passed["post"]["detail"]
    assert {"post.content", "post.page", "tombstone", "tombstone.content"} <= set(passed)
    assert newest["type"] == "Article" and newest["name"] and "summary" not in newest
    assert newest["updated"] > newest["published"]
