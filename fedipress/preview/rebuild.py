"""`fedipress serve`: build into SITE/.fedipress/serve, serve it on a local port, rebuild on
every change and reload the open tabs. A failed build is shown, never fatal.

Builds run one at a time in a worker thread; the server, the watchers and the build state
live on one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from fedipress.config import CONFIG_FILE, load_config
from fedipress.documents.urls import WEBFINGER_PATH, dynamic_paths
from fedipress.errors import Diagnostic, FedipressError, counted
from fedipress.federation.store.url import PREVIEW_SQLITE_PATH
from fedipress.hosting import header_rules, redirect_rules

if TYPE_CHECKING:
    import uvicorn
    import watchfiles

    from fedipress import app
    from fedipress.inbox.service import InboxService
    from fedipress.preview.server import DevServer, LiveReload
    from fedipress.preview.webfinger import WebFingerApp

# The build, the server, the inbox and the watcher are imported when `serve` runs, so that
# every other command starts without loading them (the CLI imports this module at start-up).

SERVE_DIR = Path(".fedipress") / "serve"
# What a rebuild reports as its cause when the local inbox received a reply, like or boost.
INTERACTIONS_CHANGED = "(the conversation changed: a reply, like or boost arrived)"
WATCHED_DIRS = frozenset({"content", "static", "templates", "themes"})
WATCHED_NAMES = WATCHED_DIRS | {CONFIG_FILE}


class Reporter(Protocol):
    """Where the preview reports how builds go: the CLI prints it, a test may collect it."""

    def info(self, text: str) -> None:
        """A progress line (`built …`, `serving …`); hidden when quiet."""

    def problem(self, text: str) -> None:
        """A failed build or publish: always shown."""

    def warnings(self, warnings: tuple[Diagnostic, ...]) -> None:
        """A build's warnings, when they differ from the last build's."""

    def changed(self, paths: list[str]) -> None:
        """The files whose change started a rebuild (shown when verbose)."""


BUG_NOTE = "This is a bug in fedipress, not in your site. Please report it with the traceback."


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port
    base_url: str | None = None  # default: this server's own address
    drafts: bool = False
    future: bool = False
    reload: bool = True
    jobs: int = 0


def bind_socket(host: str, port: int) -> socket.socket:
    """Listen before the first build, so the build can use the real port (for --port 0)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise FedipressError(f"cannot listen on '{host}': {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise FedipressError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="is another server using the port? choose another --port, or --port 0",
        ) from None
    return sock


def local_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):  # listening everywhere; links still go to this machine
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def summary(result: app.BuildResult) -> str:
    changed = "no changes" if result.unchanged else f"{result.rendered} written"
    return (
        f"built {counted(result.posts, 'post')}, {counted(result.pages, 'page')}, "
        f"{counted(result.outputs, 'file')} ({changed}) in {result.seconds:.2f}s"
    )


class Rebuilder:
    """Runs builds one at a time and tells the server and the tabs how each one went."""

    def __init__(
        self,
        site_dir: Path,
        options: app.BuildOptions,
        server: DevServer,
        report: Reporter,
        webfinger: WebFingerApp | None = None,
        inbox: InboxService | None = None,
    ) -> None:
        self.webfinger = webfinger
        self.inbox = inbox
        self.site_dir = site_dir
        self.options = options
        self.server = server
        self.live = server.live
        self.report = report
        self._warnings: tuple[Diagnostic, ...] = ()

    async def build(self) -> None:
        from fedipress import app

        self.live.build_started()
        try:
            result = await asyncio.to_thread(app.build, self.site_dir, self.options)
        except FedipressError as exc:
            text = str(exc)
            self.report.problem(text)
            self.live.build_finished(text)
        except Exception:
            text = traceback.format_exc() + "\n" + BUG_NOTE
            self.report.problem(text)
            self.live.build_finished(text)
        except BaseException:  # cancelled at shutdown: leave the state as it was
            self.live.build_finished(self.live.error, changed=False)
            raise
        else:
            config = result.config
            if self.webfinger is not None:
                self.webfinger.config = config
            self.server.set_rules(header_rules(config), redirect_rules(config, result.redirects))
            if result.warnings != self._warnings:  # each rebuild would repeat them
                self.report.warnings(result.warnings)
                self._warnings = result.warnings
            self.report.info(summary(result))
            if self.inbox is not None:
                await self.publish()
            self.live.build_finished(None, changed=not result.unchanged)

    async def publish(self) -> None:
        """After each build, send new, edited and removed posts to the local followers, as
        `fedipress publish` does after a deploy: the whole loop can be watched locally."""
        from fedipress.app.publish import output_reader, publish

        assert self.inbox is not None and self.options.output is not None
        federation = self.inbox.federation
        try:
            read = output_reader(federation.config, self.options.output)
            result = await publish(federation, read)
        except FedipressError as exc:
            self.report.problem(str(exc))
            return
        if result.changes:
            self.report.info(
                f"published {result.summary()} to {result.inboxes} inboxes"
                + (" and the Matrix room" if result.announcements else "")
            )
        if result.queued:
            self.inbox.start_sender()

    async def rebuild_on_change(self, watcher: Watcher, stop: asyncio.Event) -> None:
        """Rebuild after each batch of changes until `stop` is set."""
        while (changes := await watcher.next_batch(stop)) is not None:
            self.report.changed(sorted(changes))
            await self.build()


class Watcher:
    """Watches what a build reads: fedipress.yaml, content/, static/, templates/, themes/.

    Two watchers: the site folder itself, not recursive (fedipress.yaml, even when an editor
    saves it by renaming, and the watched folders appearing), and the watched folders,
    recursive. Watching the whole site would also watch _site and .fedipress, which every
    build rewrites."""

    def __init__(self, site_dir: Path) -> None:
        # Absolute, so it compares equal to the parents of the paths watchfiles reports.
        self.site_dir = Path(os.path.abspath(site_dir))
        self._queue: asyncio.Queue[set[str]] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._tree_stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start watching; returns once the watches are in place, so that no change made
        after it returns (even during the first build) is missed."""
        top = _pump(self._queue, self._stop, [self.site_dir], False, _TopFilter(self.site_dir))
        self._tasks = [asyncio.create_task(top), self._watch_tree()]
        await asyncio.sleep(0)  # each task sets up its watches before its first await

    async def next_batch(self, stop: asyncio.Event) -> set[str] | None:
        """The paths changed since the last batch (all of them, when a build took a while),
        or None once `stop` is set."""
        got = asyncio.create_task(self._queue.get())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({got, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not got.done():
            got.cancel()
            return None
        changes = got.result()
        while not self._queue.empty():
            changes |= self._queue.get_nowait()
        if any(Path(p).parent == self.site_dir and Path(p).name in WATCHED_DIRS for p in changes):
            # A watched folder came or went: watch the new set.
            self._tree_stop.set()
            await self._tasks.pop()
            self._tree_stop = asyncio.Event()
            self._tasks.append(self._watch_tree())
            await asyncio.sleep(0)
        return changes

    def poke(self, reason: str) -> None:
        """Start a rebuild as a file change would (`reason` is reported as the change)."""
        self._queue.put_nowait({reason})

    async def close(self) -> None:
        self._stop.set()
        self._tree_stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _watch_tree(self) -> asyncio.Task[None]:
        import watchfiles

        roots = [self.site_dir / name for name in sorted(WATCHED_DIRS)]
        existing = [r for r in roots if r.is_dir()]
        tree = _pump(self._queue, self._tree_stop, existing, True, watchfiles.DefaultFilter())
        return asyncio.create_task(tree)


@dataclass(frozen=True)
class _TopFilter:
    site_dir: Path

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return Path(path).parent == self.site_dir and Path(path).name in WATCHED_NAMES


async def _pump(
    queue: asyncio.Queue[set[str]],
    stop: asyncio.Event,
    paths: list[Path],
    recursive: bool,
    watch_filter: Callable[[watchfiles.Change, str], bool],
) -> None:
    import watchfiles

    if not paths:
        await stop.wait()
        return
    async for changes in watchfiles.awatch(
        *paths, watch_filter=watch_filter, stop_event=stop, recursive=recursive, step=50
    ):
        queue.put_nowait({os.path.normpath(path) for _, path in changes})


async def _close_streams_on_exit(server: uvicorn.Server, live: LiveReload) -> None:
    """uvicorn waits for open connections before it exits; end the event streams first."""
    while not server.should_exit:
        await asyncio.sleep(0.1)
    live.close()


async def run_server(site_dir: Path, options: ServeOptions, report: Reporter) -> None:
    """Serve until Ctrl-C. Prints `serving URL` once the first build is done."""
    import uvicorn

    from fedipress import app
    from fedipress.preview.server import AllowedHosts, DevServer, LiveReload
    from fedipress.preview.webfinger import WebFingerApp

    sock = bind_socket(options.host, options.port)
    url = local_url(sock)
    base_url = options.base_url or url
    inbox, dev_key = _local_inbox(site_dir, base_url)
    build_options = app.BuildOptions(
        output=site_dir / SERVE_DIR,
        drafts=options.drafts,
        future=options.future,
        base_url=base_url,
        jobs=options.jobs,
        public_key=dev_key,
        # The pages show what the preview's own inbox received.
        interactions_database=f"sqlite:{SERVE_DATABASE}" if inbox is not None else None,
    )
    base_path = urlsplit(base_url).path.rstrip("/")
    live = LiveReload()
    live.build_started()  # requests wait for the first build rather than see old files
    webfinger = WebFingerApp()  # sees the query, unlike a static host: 400 and 404 work
    routes: dict[str, Any] = {WEBFINGER_PATH: webfinger}
    if inbox is not None:  # the inbox function answers its paths, as the proxy rules say
        from fedipress.adapters.asgi import InboxASGI

        inbox_app = InboxASGI(inbox)
        # The inbox's accounts are those of the config it opened with: a change to
        # fediverse.accounts takes a restart of serve.
        routes |= {path: inbox_app for path in dynamic_paths(inbox.config)}
    server_app = DevServer(
        site_dir / SERVE_DIR,
        live,
        base_path=base_path,
        live_reload=options.reload,
        routes=routes,
        allowed_hosts=AllowedHosts.for_server(options.host, sock.getsockname()[1], base_url),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            server_app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            server_header=False,
            http="h11",
            ws="none",
            timeout_graceful_shutdown=3,
        )
    )
    rebuilder = Rebuilder(site_dir, build_options, server_app, report, webfinger, inbox)
    stop = asyncio.Event()

    async def work() -> None:
        watcher = Watcher(site_dir) if options.reload else None
        if watcher is not None:
            await watcher.start()
            if inbox is not None:  # a reply, like or boost rebuilds the touched pages
                inbox.shown_listeners.append(lambda: watcher.poke(INTERACTIONS_CHANGED))
        try:
            await rebuilder.build()
            report.info(f"serving {url.rstrip('/')}{base_path}/")
            if inbox is not None:
                report.info(
                    f"the preview's followers are kept in {SERVE_DATABASE}: "
                    "see them with `fedipress followers list --preview`"
                )
            if watcher is not None:
                await rebuilder.rebuild_on_change(watcher, stop)
        finally:
            if watcher is not None:
                await watcher.close()

    tasks = [
        asyncio.create_task(work()),
        asyncio.create_task(_close_streams_on_exit(server, live)),
    ]
    try:
        await server.serve(sockets=[sock])
    finally:
        stop.set()
        live.close()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        if inbox is not None:
            await inbox.aclose()  # its store too
        sock.close()


SERVE_DATABASE = PREVIEW_SQLITE_PATH.as_posix()


def _local_inbox(site_dir: Path, base_url: str) -> tuple[InboxService | None, Path | None]:
    """The inbox for the preview, when the site is a Fediverse account: its own database,
    private addresses allowed (local peers live on 127.0.0.1), and the site's key, or a local
    key pair when this checkout lacks the private key."""
    from fedipress.app.keyfiles import dev_key_pair
    from fedipress.inbox.setup import DATABASE_ENV, InboxSetup, open_inbox

    config = load_config(site_dir)
    if config.fediverse is None:
        return None, None
    dev_key = dev_key_pair(site_dir, config)
    environ = {**os.environ, DATABASE_ENV: f"sqlite:{SERVE_DATABASE}"}
    setup = InboxSetup(site_dir, base_url, allow_private=True, public_key=dev_key)
    return open_inbox(setup, environ), dev_key


__all__ = ["Reporter", "ServeOptions", "bind_socket", "run_server"]
