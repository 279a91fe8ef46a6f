"""CLI commands for publishing to followers: `publish`, `deliver`, `queue` (once called
`deliveries`, one letter from `deliver`; the old name still works, with a note)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fedipress.cli.support import (
    Verbosity,
    _relative,
    _require_site,
    handle_errors,
    log_to_stderr,
    printable,
    site_argument,
    verbosity_options,
)

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from fedipress.app.wiring import Federation
    from fedipress.federation.store.base import Store

# The use cases are imported when a command runs, so that `fedipress --help` and the other
# commands start without loading httpx and the store drivers.


def _federation(site: Path) -> Federation:
    from fedipress.app.wiring import open_federation

    _require_site(site)
    return open_federation(site)


def say_store(site: Path, verbosity: Verbosity, preview: bool = False) -> None:
    """Name the store a command uses on standard error: the preview keeps its own."""
    from fedipress.app.wiring import describe_site_store

    if not verbosity.quiet:
        where = _relative(describe_site_store(site, preview=preview))
        click.echo(f"store: {printable(where)}", err=True)


async def _drain(federation: Federation, verbosity: Verbosity) -> tuple[int, int, int]:
    """Send what is due; a progress line on a terminal. Returns (done, retrying, dead)."""
    show = not verbosity.quiet and sys.stderr.isatty()

    def progress(sent: int) -> None:
        if show:
            sys.stderr.write(f"\rdelivered {sent}")
            sys.stderr.flush()

    await federation.sender.prune_if_due()  # old rows go with each round, as the inbox's do
    outcomes = await federation.sender.drain(progress=progress)
    if show:
        sys.stderr.write("\r\033[K")
    done = sum(o.verdict == "done" for o in outcomes)
    dead = sum(o.verdict in ("dead", "gone") for o in outcomes)
    return done, len(outcomes) - done - dead, dead


def _old_workers(ctx: click.Context, _param: click.Parameter, value: int | None) -> None:
    """`--workers N`, the old spelling of `--jobs N`: still works, with a note."""
    if value is not None:
        click.echo("note: --workers is now --jobs (-j), as in `fedipress build`", err=True)
        ctx.meta["jobs"] = value


def workers_option(func: F) -> F:
    """`-j/--jobs`: processes, as in `fedipress build` (here: sending processes)."""
    func = click.option(
        "--workers",
        type=click.IntRange(0),
        hidden=True,
        expose_value=False,
        callback=_old_workers,
        help="Old name of --jobs.",
    )(func)
    return click.option(
        "--jobs",
        "-j",
        "workers",
        type=click.IntRange(0),
        default=1,
        show_default=True,
        help="Sending processes (0: one per core); more send a large fan-out faster.",
        callback=lambda ctx, _p, value: ctx.meta.get("jobs", value),
    )(func)


@click.command()
@verbosity_options
@site_argument
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="The built site to publish from (default: SITE/_site).",
)
@click.option(
    "--from",
    "from_url",
    metavar="URL",
    help="Read the published objects from the live site at URL instead.",
)
@click.option(
    "--backfill",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="On the first publish, also send the newest N existing posts.",
)
@click.option("--no-deliver", is_flag=True, help="Only queue; `fedipress deliver` sends.")
@workers_option
@click.pass_obj
@handle_errors
def publish(
    verbosity: Verbosity,
    site: Path,
    output: Path | None,
    from_url: str | None,
    backfill: int,
    no_deliver: bool,
    workers: int,
) -> None:
    """Send new, edited and removed posts to every follower: Create, Update, Delete; and
    each account's boosts (topic accounts), profile changes and move to its own followers."""
    from fedipress.app.publish import live_site_reader, output_reader
    from fedipress.app.publish import publish as publish_changes
    from fedipress.app.wiring import MATRIX_TOKEN_ENV
    from fedipress.federation.matrix import CHANNEL as MATRIX_CHANNEL

    federation = _federation(site)
    say_store(site, verbosity)

    async def run() -> tuple[str, int]:
        async with federation:
            if from_url:
                read = live_site_reader(federation, from_url)
            else:
                read = output_reader(federation.config, output or site / "_site")
            result = await publish_changes(federation, read, backfill)
            line = (
                result.summary()
                + (f", {result.recorded} recorded without sending" if result.recorded else "")
                + f"; {result.queued - result.announcements} deliveries to "
                + f"{result.inboxes} inboxes queued"
                + (f", {result.announcements} Matrix messages" if result.announcements else "")
            )
            if result.announcements and MATRIX_CHANNEL not in federation.sender.channels:
                line += (
                    f"\nwarning: {MATRIX_TOKEN_ENV} is not set, so the Matrix messages wait "
                    "for a sender that has it (fedipress deliver, the inbox function)"
                )
            return line, result.queued

    message, queued = asyncio.run(run())
    if not no_deliver and queued:
        done, retrying, dead = drain_with_workers(site, workers, verbosity)
        message += f"; {done} delivered, {retrying} to retry, {dead} failed"
    if not verbosity.quiet:
        click.echo(message)


def _drain_once(site: str, per_host: int, quiet: bool) -> tuple[int, int, int]:
    """One sender process: its own store connection and clients, as a child must have."""
    federation = _federation(Path(site))
    federation.sender.per_host = per_host

    async def run() -> tuple[int, int, int]:
        async with federation:
            return await _drain(federation, Verbosity(quiet=quiet))

    return asyncio.run(run())


def drain_with_workers(site: Path, workers: int, verbosity: Verbosity) -> tuple[int, int, int]:
    """Send what is due with `workers` processes (0: one per core). Leases keep them apart;
    each gets a share of the per-host limit, so servers see the same concurrency."""
    workers = workers or os.cpu_count() or 1
    per_host = max(1, 4 // workers)
    if workers == 1:
        return _drain_once(str(site), 4, verbosity.quiet)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.starmap(_drain_once, [(str(site), per_host, True)] * workers)
    return tuple(sum(r[i] for r in results) for i in range(3))  # type: ignore[return-value]


@click.command()
@verbosity_options
@site_argument
@click.option("--loop", is_flag=True, help="Keep running and send as rows come due.")
@workers_option
@click.pass_obj
@handle_errors
def deliver(verbosity: Verbosity, site: Path, loop: bool, workers: int) -> None:
    """Send the queued deliveries that are due and prune old rows (once, or --loop until
    Ctrl-C)."""
    if not loop:
        from fedipress.app.wiring import fediverse_config

        _require_site(site)
        fediverse_config(site)  # refuses a folder that is not a site before any store is made
        say_store(site, verbosity)
        done, retrying, dead = drain_with_workers(site, workers, verbosity)
        if not verbosity.quiet:
            click.echo(f"{done} delivered, {retrying} to retry, {dead} failed")
        return
    federation = _federation(site)
    say_store(site, verbosity)
    log_to_stderr(verbosity)  # one line per delivery outcome while it runs

    async def run() -> str:
        async with federation:
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await federation.sender.run(stop)
            return "stopped"

    message = asyncio.run(run())
    if not verbosity.quiet:
        click.echo(message)


@click.command("queue")
@verbosity_options
@site_argument
@click.option("--state", type=click.Choice(["pending", "done", "dead"]), help="Only this state.")
@click.option(
    "--limit", type=click.IntRange(1), default=50, show_default=True, help="How many rows to show."
)
@click.option("--retry-dead", is_flag=True, help="Make every dead delivery pending again.")
@click.option(
    "--preview",
    is_flag=True,
    help="Use the store of `fedipress serve` (.fedipress/serve-inbox.db) instead.",
)
@click.pass_obj
@handle_errors
def queue(
    verbosity: Verbosity | None,
    site: Path,
    state: str | None,
    limit: int,
    retry_dead: bool,
    preview: bool,
) -> None:
    """Show the delivery queue: counts, and the latest rows with their last error."""
    from fedipress.app.wiring import fediverse_config, open_site_store

    verbosity = verbosity or Verbosity()
    _require_site(site)
    fediverse_config(site)  # refuses a folder that is not a Fediverse site, as build does
    say_store(site, verbosity, preview)
    store = open_site_store(site, preview=preview)
    try:
        _show_deliveries(store, verbosity, state, limit, retry_dead)
    finally:
        store.close()


def _show_deliveries(
    store: Store, verbosity: Verbosity, state: str | None, limit: int, retry_dead: bool
) -> None:
    if retry_dead:
        count = store.retry_dead(now=datetime.now(UTC))
        click.echo(f"{count} dead deliveries are pending again")
    stats = store.queue_stats()
    click.echo(f"pending {stats.pending}, done {stats.done}, dead {stats.dead}")
    for row in store.list_deliveries(state=state, limit=limit):  # type: ignore[arg-type]
        status = row.last_status if row.last_status is not None else "-"
        where, what = printable(row.inbox_url), printable(row.activity_id)
        line = f"{row.state:7} {row.attempts:2}x {status!s:>4} {where}  {what}"
        if row.state == "pending":
            line += f"  next {row.next_attempt_at:%Y-%m-%d %H:%M:%S}"
        if row.last_error and verbosity.verbose:
            line += f"\n    {printable(row.last_error[:200])}"
        click.echo(line)


def _old_deliveries(ctx: click.Context, **params: Any) -> None:
    click.echo("note: `fedipress deliveries` is now `fedipress queue`", err=True)
    ctx.invoke(queue, **params)


# The old name, hidden from --help: scripts that call it keep working.
deliveries = click.Command(
    "deliveries",
    params=queue.params,
    callback=click.pass_context(_old_deliveries),
    hidden=True,
    help="Old name of `fedipress queue`.",
)
