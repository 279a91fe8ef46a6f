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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from fedipress.cli_support import (
    Verbosity,
    _print_warnings,
    _relative,
    _require_site,
    handle_errors,
    site_argument,
    verbosity_options,
)
from fedipress.config import CONFIG_FILE, load_config
from fedipress.errors import Diagnostic, FedipressError

if TYPE_CHECKING:
    import uvicorn
    import watchfiles

    from fedipress import app
    from fedipress.adapters.webfinger_asgi import WebFingerApp
    from fedipress.devserver import DevServer, LiveReload
    from fedipress.inbox.service import InboxService

# The build, the server and the watcher are imported when `serve` runs, so that every other
# command starts without loading them (as cli.py does for fedipress.app).

SERVE_DIR = Path(".fedipress") / "serve"
WATCHED_DIRS = frozenset({"content", "static", "templates", "themes"})
WATCHED_NAMES = WATCHED_DIRS | {CONFIG_FILE}
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
        f"built {result.posts} posts, {result.pages} pages, "
        f"{result.outputs} files ({changed}) in {result.seconds:.2f}s"
    )


class Rebuilder:
    """Runs builds one at a time and tells the server and the tabs how each one went."""

    def __init__(
        self,
        site_dir: Path,
        options: app.BuildOptions,
        server: DevServer,
        verbosity: Verbosity,
        webfinger: WebFingerApp | None = None,
        inbox: InboxService | None = None,
    ) -> None:
        self.webfinger = webfinger
        self.inbox = inbox
        self.site_dir = site_dir
        self.options = options
        self.server = server
        self.live = server.live
        self.verbosity = verbosity
        self._warnings: tuple[Diagnostic, ...] = ()

    async def build(self) -> None:
        from fedipress import app
        from fedipress.hosting import header_rules, redirect_rules

        self.live.build_started()
        try:
            result = await asyncio.to_thread(app.build, self.site_dir, self.options)
        except FedipressError as exc:
            text = _relative(str(exc))
            click.echo(text, err=True)
            self.live.build_finished(text)
        except Exception:
            text = traceback.format_exc() + "\n" + BUG_NOTE
            click.echo(text, err=True)
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
                _print_warnings(result.warnings, self.verbosity)
                self._warnings = result.warnings
            if not self.verbosity.quiet:
                click.echo(summary(result))
            if self.inbox is not None:
                await self.publish()
            self.live.build_finished(None, changed=not result.unchanged)

    async def publish(self) -> None:
        """After each build, send new, edited and removed posts to the local followers, as
        `fedipress publish` does after a deploy: the whole loop can be watched locally."""
        from fedipress.publish import load_live_objects, output_reader, queue_changes

        assert self.inbox is not None and self.options.output is not None
        config = self.inbox.config
        try:
            live = await load_live_objects(config, output_reader(config, self.options.output))
            result = await asyncio.to_thread(
                queue_changes, config, self.inbox.store, live, datetime.now(UTC)
            )
        except FedipressError as exc:
            click.echo(_relative(str(exc)), err=True)
            return
        if result.changes and not self.verbosity.quiet:
            click.echo(
                f"published {result.created} new, {result.updated} edited, "
                f"{result.deleted} removed to {result.inboxes} inboxes"
            )
        if result.queued:
            self.inbox.start_sender()
            self.inbox.sender.wake.set()

    async def rebuild_on_change(self, watcher: Watcher, stop: asyncio.Event) -> None:
        """Rebuild after each batch of changes until `stop` is set."""
        while (changes := await watcher.next_batch(stop)) is not None:
            if self.verbosity.verbose:
                for path in sorted(changes):
                    click.echo(f"changed: {_relative(path)}", err=True)
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


async def run_server(site_dir: Path, options: ServeOptions, verbosity: Verbosity) -> None:
    """Serve until Ctrl-C. Prints `serving URL` once the first build is done."""
    import uvicorn

    from fedipress import app
    from fedipress.adapters.webfinger_asgi import WebFingerApp
    from fedipress.devserver import AllowedHosts, DevServer, LiveReload
    from fedipress.webfinger_endpoint import PATH as WEBFINGER_PATH

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
    )
    base_path = urlsplit(base_url).path.rstrip("/")
    live = LiveReload()
    live.build_started()  # requests wait for the first build rather than see old files
    webfinger = WebFingerApp()  # sees the query, unlike a static host: 400 and 404 work
    routes: dict[str, Any] = {WEBFINGER_PATH: webfinger}
    if inbox is not None:  # the inbox function answers its paths, as the proxy rules say
        from fedipress.adapters.asgi import InboxASGI

        inbox_app = InboxASGI(inbox)
        routes |= {path: inbox_app for path in INBOX_PATHS}
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
    rebuilder = Rebuilder(site_dir, build_options, server_app, verbosity, webfinger, inbox)
    stop = asyncio.Event()

    async def work() -> None:
        watcher = Watcher(site_dir) if options.reload else None
        if watcher is not None:
            await watcher.start()
        try:
            await rebuilder.build()
            click.echo(f"serving {url.rstrip('/')}{base_path}/")
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
            await inbox.aclose()
            inbox.store.close()
        sock.close()


INBOX_PATHS = ("/ap/inbox", "/ap/followers", "/ap/health")
SERVE_DATABASE = ".fedipress/serve-inbox.db"


def _local_inbox(site_dir: Path, base_url: str) -> tuple[InboxService | None, Path | None]:
    """The inbox for the preview, when the site is a Fediverse account: its own database,
    private addresses allowed (local peers live on 127.0.0.1), and the site's key, or a local
    key pair when this checkout lacks the private key."""
    from fedipress.inbox.setup import DATABASE_ENV, InboxSetup, open_inbox
    from fedipress.keyfiles import dev_key_pair

    config = load_config(site_dir)
    if config.fediverse is None:
        return None, None
    dev_key = dev_key_pair(site_dir, config)
    environ = {**os.environ, DATABASE_ENV: f"sqlite:{SERVE_DATABASE}"}
    setup = InboxSetup(site_dir, base_url, allow_private=True, public_key=dev_key)
    return open_inbox(setup, environ), dev_key


def serve_site(site_dir: Path, options: ServeOptions, verbosity: Verbosity) -> None:
    """Run `fedipress serve` in the foreground; returns when stopped with Ctrl-C."""
    if not (site_dir / CONFIG_FILE).is_file():
        load_config(site_dir)  # raises the usual "no fedipress.yaml" error
    if options.base_url:  # a usage error: check it now rather than in every build
        parts = urlsplit(options.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise FedipressError(
                f"--base-url must be an absolute http(s) URL (got {options.base_url!r})"
            )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_server(site_dir, options, verbosity))
    if not verbosity.quiet:
        click.echo("stopped", err=True)


@click.command()
@verbosity_options
@site_argument
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--base-url", help="Base URL for the build (default: this server's address).")
@click.option("--drafts", is_flag=True, help="Include posts marked 'draft: true'.")
@click.option("--future", is_flag=True, help="Include posts dated in the future.")
@click.option(
    "--no-reload", is_flag=True, help="Build once: do not watch files or reload open tabs."
)
@click.pass_obj
@handle_errors
def serve(
    verbosity: Verbosity | None,
    site: Path,
    port: int,
    host: str,
    base_url: str | None,
    drafts: bool,
    future: bool,
    no_reload: bool,
) -> None:
    """Preview the site on a local server, rebuilding and reloading the page on every save."""
    _require_site(site)
    options = ServeOptions(host, port, base_url, drafts, future, reload=not no_reload)
    serve_site(site, options, verbosity or Verbosity())


__all__ = ["ServeOptions", "bind_socket", "run_server", "serve", "serve_site"]
