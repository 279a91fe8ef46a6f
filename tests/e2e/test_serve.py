"""`fedipress serve` end to end: a real subprocess on a free loopback port, real HTTP, real
file edits. A few in-process tests drive the DevServer app through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from serving import TIMEOUT, Serve

from fedipress.config import load_config
from fedipress.hosting import RedirectRule, header_rules, headers_for, response_headers
from fedipress.preview.server import AllowedHosts, DevServer, LiveReload

SITE = {
    "fedipress.yaml": "title: Serve Test\nbase_url: https://blog.example/\n",
    "content/posts/hello.md": (
        "---\ntitle: Hello\ndate: 2024-05-01\ntags: [news]\n---\nThe first version of this post.\n"
    ),
    "content/pages/about.md": "---\ntitle: About\n---\nAbout this blog.\n",
    "static/js/extra.js": "// a site script\n",
}


def write_site(root: Path) -> Path:
    for name, text in SITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_site(tmp_path / "site")


@pytest.fixture
def serve(site: Path) -> Iterator[Serve]:
    """A server of its own, for tests that edit the site."""
    server = Serve(site)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One server for the tests that only read."""
    server = Serve(write_site(tmp_path_factory.mktemp("shared")))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def client(shared: Serve) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared.url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def own_client(serve: Serve) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve.url, timeout=TIMEOUT) as client:
        yield client


def poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class EventReader:
    """Reads the server-sent events of /_fedipress/events in a thread.

    A raw HTTP/1.0 socket rather than an HTTP client: closing it ends a blocked read at once,
    and HTTP/1.0 keeps chunked framing out of the stream."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, str]] = []
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        self._sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        request = f"GET /_fedipress/events HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n"
        self._sock.sendall(request.encode())
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                continue
            assert b"text/event-stream" in head
            *blocks, tail = rest.split(b"\n\n")
            buffer = head + sep + tail
            for block in blocks:
                self._parse(block.decode())

    def _parse(self, block: str) -> None:
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            self.events.append((event, "\n".join(data)))

    def wait_for(self, name: str) -> str:
        poll(lambda: any(e == name for e, _ in self.events), f"an SSE {name!r} event")
        return next(d for e, d in self.events if e == name)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self._sock.close()


# --- the running server ----------------------------------------------------------------------


def test_serve__builds_with_its_own_address_as_base_url(shared: Serve, client) -> None:
    serve, site = shared, shared.site
    home = client.get("/")
    assert home.status_code == 200
    assert "Serve Test" in home.text
    assert f'<link rel="canonical" href="{serve.url}">' in home.text
    assert f"<id>{serve.url}posts/hello/</id>" in client.get("/feed.xml").text
    # Into its own folder, never into _site.
    assert (site / ".fedipress" / "serve" / "index.html").is_file()
    assert not (site / "_site").exists()
    assert re.search(r"^built 1 post, 1 page, \d+ files", serve.text("out"), re.M)


@pytest.mark.parametrize(
    ("path", "filename"),
    [
        ("/", "index.html"),
        ("/posts/hello/", "index.html"),
        ("/css/style.css", "style.css"),
        ("/js/extra.js", "extra.js"),
        ("/feed.xml", "feed.xml"),
        ("/feed.json", "feed.json"),
        ("/tags/news/feed.xml", "feed.xml"),
        ("/robots.txt", "robots.txt"),
    ],
)
def test_serve__headers_are_the_host_rules(shared: Serve, client, path, filename) -> None:
    rules = header_rules(load_config(shared.site).with_base_url(shared.url))
    response = client.get(path)
    assert response.status_code == 200
    expected = {k.lower(): v for k, v in response_headers(path, filename, rules)}
    # The one deliberate difference: a preview revalidates everything, so edits show at once.
    expected["cache-control"] = "no-cache"
    for name, value in headers_for(path, rules):
        if name.lower() != "cache-control":
            assert response.headers[name] == value, name
    got = {k: v for k, v in response.headers.items() if k not in ("date", "etag", "content-length")}
    assert got == expected


def test_serve__live_reload_script_only_in_responses(shared: Serve, client) -> None:
    site = shared.site
    page = client.get("/posts/hello/").text
    assert '<script src="/_fedipress/live.js"' in page
    assert page.index("/_fedipress/live.js") < page.rindex("</body>")
    written = (site / ".fedipress" / "serve" / "posts" / "hello" / "index.html").read_text()
    assert "_fedipress" not in written
    script = client.get("/_fedipress/live.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "EventSource" in script.text


def test_serve__unknown_path_gets_the_404_page(client) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_serve__directory_without_slash_redirects(client) -> None:
    response = client.get("/about?x=1")
    assert response.status_code == 302
    assert response.headers["location"] == "/about/?x=1"
    assert client.get("/about/").status_code == 200


def test_serve__etag_and_304(client) -> None:
    first = client.get("/css/style.css")
    etag = first.headers["etag"]
    again = client.get("/css/style.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = client.get("/css/style.css", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


def test_serve__head_and_other_methods(client) -> None:
    get = client.get("/")
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    post = client.post("/", content=b"x")
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"


def test_serve__host_files_are_not_served(shared: Serve, client) -> None:
    site = shared.site
    assert (site / ".fedipress" / "serve" / "_headers").is_file()
    assert client.get("/_headers").status_code == 404
    assert client.get("/_redirects").status_code == 404


@pytest.mark.parametrize(
    "target",
    [
        "/../../fedipress.yaml",
        "/%2e%2e/%2e%2e/fedipress.yaml",
        "/css/..%2f..%2f..%2ffedipress.yaml",
    ],
)
def test_serve__path_traversal_is_refused(shared: Serve, target: str) -> None:
    # A raw request: HTTP clients would clean up the '..' before sending.
    host, port = shared.url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 404 ")
    assert b"base_url" not in reply


def test_serve__rebuilds_and_reloads_after_an_edit(serve: Serve, own_client, site) -> None:
    client = own_client
    events = EventReader(serve.url)
    try:
        hello = events.wait_for("hello")
        post = site / "content" / "posts" / "hello.md"
        post.write_text(post.read_text().replace("first version", "second version"))
        poll(lambda: "second version" in client.get("/posts/hello/").text, "the rebuilt post")
        assert int(events.wait_for("reload")) > int(hello)
        serve.wait_for(r"^built 1 post,", count=2)
    finally:
        events.close()


def test_serve__build_error_shows_and_the_server_recovers(serve: Serve, own_client, site) -> None:
    client = own_client
    events = EventReader(serve.url)
    try:
        events.wait_for("hello")
        post = site / "content" / "posts" / "hello.md"
        good = post.read_text()
        post.write_text(good.replace("title: Hello", "title: [Hello <b>"))
        poll(lambda: client.get("/posts/hello/").status_code == 500, "the error page")
        page = client.get("/posts/hello/").text
        assert re.search(r"content/posts/hello\.md:\d+:\d+: ", page)
        assert "build failed: 1 error" in page
        assert "/_fedipress/live.js" in page  # so the tab recovers by itself
        assert re.match(r"content/posts/hello\.md:\d+:\d+: ", events.wait_for("error"))
        serve.wait_for(r"^content/posts/hello\.md:\d+:\d+: ", stream="err")  # the terminal too
        assert "Traceback" not in serve.text("err")
        assert serve.proc.poll() is None
        assert client.get("/css/style.css").status_code == 200  # assets of the last good build
        post.write_text(good.replace("first version", "fixed version"))
        poll(lambda: client.get("/posts/hello/").status_code == 200, "the fixed post")
        assert "fixed version" in client.get("/posts/hello/").text
        events.wait_for("reload")
    finally:
        events.close()


def test_serve__a_broken_first_build_shows_the_error_and_recovers(site: Path) -> None:
    # Given a site whose first build fails, in a folder never built before
    post = site / "content" / "posts" / "hello.md"
    good = post.read_text()
    post.write_text(good.replace("date: 2024-05-01", "date: 2024-13-01"))
    server = Serve(site).start()
    events = None
    try:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            # Then every page shows the error and the reload script, not a bare "not found"
            for path in ("/", "/posts/hello/", "/about/"):
                page = client.get(path)
                assert page.status_code == 500, path
                assert "content/posts/hello.md:3:7: front matter key" in page.text, path
                assert "/_fedipress/live.js" in page.text, path
            events = EventReader(server.url)
            events.wait_for("error")
            # When the file is fixed, the open tab is told to reload, and the page is there
            post.write_text(good)
            events.wait_for("reload")
            poll(lambda: client.get("/posts/hello/").status_code == 200, "the fixed post")
    finally:
        if events is not None:
            events.close()
        server.stop()


def test_serve__watches_the_config_and_new_folders(serve: Serve, own_client, site) -> None:
    # An editor that saves by writing a new file and renaming it over the old one.
    config = site / "fedipress.yaml"
    fresh = site / ".fedipress.yaml.swp"
    fresh.write_text(config.read_text().replace("Serve Test", "Renamed Blog"))
    fresh.replace(config)
    poll(lambda: "Renamed Blog" in own_client.get("/").text, "the new title")
    # templates/ did not exist when the server started: it is watched once it appears.
    (site / "templates").mkdir()
    (site / "templates" / "404.html").write_text("<html><body>Lost v1</body></html>\n")
    poll(lambda: "Lost v1" in own_client.get("/nope").text, "the site's own 404 page")
    (site / "templates" / "404.html").write_text("<html><body>Lost v2</body></html>\n")
    poll(lambda: "Lost v2" in own_client.get("/nope").text, "the edited 404 page")


def test_serve__ctrl_c_stops_cleanly(serve: Serve) -> None:
    events = EventReader(serve.url)  # an open stream must not keep the server alive
    try:
        events.wait_for("hello")
        started = time.monotonic()
        assert serve.stop() == 0
        assert time.monotonic() - started < 5
    finally:
        events.close()
    assert "Traceback" not in serve.text("err")


def test_serve__port_in_use(site: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "fedipress", "serve", str(site), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve__no_site_here(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fedipress", "serve", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1
    assert "no fedipress.yaml" in result.stderr


def test_serve__base_url_with_a_path(site: Path) -> None:
    server = Serve(site, "--base-url", "http://localhost:1/blog/")
    try:
        url = server.wait_for(r"^serving (\S+)$").group(1)
        assert url.endswith("/blog/")
        with httpx.Client(timeout=TIMEOUT) as client:
            home = client.get(url)
            assert home.status_code == 200
            assert 'href="/blog/posts/hello/"' in home.text
            assert client.get(url.removesuffix("blog/")).status_code == 404
    finally:
        server.stop()


def _port(serve: Serve) -> int:
    return int(serve.url.rstrip("/").rsplit(":", 1)[1])


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example:{port}",
        "localhost:1",  # a loopback name, but not this server's port
        "127.0.0.1",
        "127.0.0.1:{port}@evil.example",
        "[::1",
    ],
)
def test_serve__answers_only_to_its_own_host_names(shared: Serve, client, host: str) -> None:
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 makes the
    browser send `Host: evil.example`; the preview (and its inbox) must not answer it."""
    header = host.format(port=_port(shared))
    for path in ("/", "/posts/hello/", "/_fedipress/live.js", "/_fedipress/events"):
        refused = client.get(path, headers={"Host": header})
        assert (refused.status_code, refused.text) == (421, "unknown host\n"), path
    assert client.post("/ap/inbox", headers={"Host": header}, content=b"{}").status_code == 421


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_serve__answers_its_loopback_names(shared: Serve, client, host: str) -> None:
    response = client.get("/posts/hello/", headers={"Host": host.format(port=_port(shared))})
    assert response.status_code == 200
    assert "Hello" in response.text


def test_serve__request_without_host_is_refused(shared: Serve) -> None:
    with socket.create_connection(("127.0.0.1", _port(shared)), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert reply.endswith(b"\r\n\r\nno Host header\n")


def test_serve__answers_the_base_url_host(site: Path) -> None:
    server = Serve(site, "--base-url", "https://preview.blog.example/").start()
    try:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            for host in ("preview.blog.example", "preview.blog.example:443"):
                assert client.get("/", headers={"Host": host}).status_code == 200, host
            for host in ("blog.example", "preview.blog.example:8443"):
                assert client.get("/", headers={"Host": host}).status_code == 421, host
            assert client.get("/").status_code == 200  # 127.0.0.1:PORT still works
    finally:
        server.stop()


# --- the DevServer app in process ------------------------------------------------------------


def _request(server: DevServer, method: str, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://dev") as client:
            return await client.request(method, path)

    return asyncio.run(go())


def _built(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    (root / "posts" / "hello").mkdir(parents=True)
    (root / "posts" / "hello" / "index.html").write_text("<html><body>Hello</body></html>")
    (root / "index.html").write_text("<html><body>Home</body></html>")
    (root / "feed.xml").write_text("<feed/>")
    return root


def test_dev_server__routes_come_before_files(tmp_path: Path) -> None:
    async def inbox(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": f"inbox {scope['path']}".encode()})

    server = DevServer(_built(tmp_path), LiveReload(), routes={"/ap/inbox": inbox})
    accepted = _request(server, "POST", "/ap/inbox")
    assert (accepted.status_code, accepted.text) == (202, "inbox /ap/inbox")
    assert _request(server, "POST", "/ap/inboxes").status_code == 405  # not under the prefix
    assert _request(server, "GET", "/").status_code == 200


def test_dev_server__never_follows_a_link_out_of_its_folder(tmp_path: Path) -> None:
    root = _built(tmp_path)
    secret = tmp_path / "private.pem"
    secret.write_text("secret")
    (root / "leak.pem").symlink_to(secret)
    (root / "posts" / "escape").symlink_to(tmp_path, target_is_directory=True)
    (root / "home.html").symlink_to(root / "index.html")  # inside the folder: served
    server = DevServer(root, LiveReload())
    assert _request(server, "GET", "/leak.pem").status_code == 404
    assert _request(server, "GET", "/posts/escape/private.pem").status_code == 404
    assert "Home" in _request(server, "GET", "/home.html").text


def test_dev_server__host_check_needs_no_name_resolution() -> None:
    allowed = AllowedHosts.for_server("0.0.0.0", 8000, "http://127.0.0.1:8000/")
    # Listening on every address: any IP literal on the port may be used, never a name.
    assert allowed.allows("192.168.1.20:8000") and allowed.allows("[fe80::1]:8000")
    assert not allowed.allows("192.168.1.20:8001")
    assert not allowed.allows("rebind.example:8000")
    specific = AllowedHosts.for_server("127.0.0.1", 8000, "http://127.0.0.1:8000/")
    assert not specific.allows("192.168.1.20:8000")
    assert specific.allows("LocalHost:8000") and not specific.allows("localhost:8000:1")


def test_dev_server__redirect_rules_apply(tmp_path: Path) -> None:
    server = DevServer(
        _built(tmp_path),
        LiveReload(),
        redirect_rules=[
            RedirectRule("/old/*", "/posts/:splat", 301),
            RedirectRule("/atom", "/feed.xml", 200),
            RedirectRule("/posts/*", "/gone/", 302),  # shadowed by the files
        ],
    )
    moved = _request(server, "GET", "/old/hello/")
    assert (moved.status_code, moved.headers["location"]) == (301, "/posts/hello/")
    rewritten = _request(server, "GET", "/atom")
    assert (rewritten.status_code, rewritten.text) == (200, "<feed/>")
    assert _request(server, "GET", "/posts/hello/").status_code == 200


def test_dev_server__waits_for_a_running_build_instead_of_404(tmp_path: Path) -> None:
    root = tmp_path / "out"
    live = LiveReload()
    server = DevServer(root, live)

    async def go() -> httpx.Response:
        live.build_started()  # the output folder is missing, as between the two renames
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://dev") as client:
            pending = asyncio.create_task(client.get("/"))
            await asyncio.sleep(0.05)
            assert not pending.done()
            _built(tmp_path)
            live.build_finished()
            return await pending

    response = asyncio.run(go())
    assert response.status_code == 200
    assert "Home" in response.text


def test_dev_server__error_page_escapes_the_error(tmp_path: Path) -> None:
    live = LiveReload()
    server = DevServer(_built(tmp_path), live)
    live.build_finished("content/posts/x.md:1:1: bad <script>alert(1)</script>")
    page = _request(server, "GET", "/posts/hello/")
    assert page.status_code == 500
    assert "bad &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert _request(server, "GET", "/feed.xml").status_code == 200  # not HTML: still served
    live.build_finished(None)
    assert _request(server, "GET", "/posts/hello/").status_code == 200


def test_dev_server__a_broken_first_build_shows_its_error_on_every_page(tmp_path: Path) -> None:
    # Given a preview whose first build failed: nothing was ever written
    live = LiveReload()
    server = DevServer(tmp_path / "never-built", live)
    live.build_finished("content/posts/x.md:2:8: front matter key 'date' is not a date")
    # Then any page shows the error overlay, with the script that reloads the tab
    for path in ("/", "/posts/x/", "/no/such/page/"):
        page = _request(server, "GET", path)
        assert page.status_code == 500, path
        assert "front matter key &#x27;date&#x27; is not a date" in page.text, path
        assert "/_fedipress/live.js" in page.text, path
    # and once a build succeeds, the pages are served again
    _built(tmp_path)
    server.root = tmp_path / "out"
    live.build_finished(None)
    assert _request(server, "GET", "/").status_code == 200


def test_dev_server__base_path(tmp_path: Path) -> None:
    server = DevServer(_built(tmp_path), LiveReload(), base_path="/blog/")
    assert _request(server, "GET", "/blog/").status_code == 200
    assert _request(server, "GET", "/blog/posts/hello/").status_code == 200
    assert _request(server, "GET", "/blog").headers["location"] == "/blog/"
    assert _request(server, "GET", "/posts/hello/").status_code == 404


def test_dev_server__no_script_without_live_reload(tmp_path: Path) -> None:
    server = DevServer(_built(tmp_path), LiveReload(), live_reload=False)
    assert _request(server, "GET", "/").text == "<html><body>Home</body></html>"
