"""CLI commands around the inbox: `inbox serve`, `followers ...`, `interactions ...`,
`blocks ...`."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from fedipress.cli.support import (
    Verbosity,
    _require_site,
    csv_cell,
    handle_errors,
    log_to_stderr,
    printable,
    site_argument,
    verbosity_options,
)
from fedipress.errors import FedipressError

if TYPE_CHECKING:
    from fedipress.app.followers import Answer, Moderation
    from fedipress.federation.store.base import BlockKind, InteractionKind, InteractionState, Store
    from fedipress.inbox.service import InboxService


MAX_CONNECTIONS = 1000  # open connections and requests `inbox serve` takes at once
MAX_HEADER_BYTES = 64 * 1024  # an RFC 9421 signature with many components stays well below


def _now() -> datetime:
    return datetime.now(UTC)


# The use cases are imported when a command runs, so that `fedipress --help` and the other
# commands start without loading httpx and the store drivers.


def _service(site: Path) -> InboxService:
    from fedipress.inbox.setup import InboxSetup, open_inbox

    _require_site(site)
    return open_inbox(InboxSetup(site))


def _store(site: Path) -> Store:
    """The store alone, for commands that need no key."""
    from fedipress.app.wiring import open_site_store

    _require_site(site)
    return open_site_store(site)


@click.group()
def inbox() -> None:
    """Run the inbox function."""


@inbox.command("serve")
@verbosity_options
@site_argument
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option(
    "--body-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="Answer 408 to a request whose body has not fully arrived by then.",
)
@click.pass_obj
@handle_errors
def inbox_serve(
    verbosity: Verbosity, site: Path, host: str, port: int, body_timeout: float
) -> None:
    """Serve the inbox (ASGI under uvicorn) with its delivery sender, for production behind a
    proxy such as Caddy or nginx. Reads FEDIPRESS_PRIVATE_KEY and FEDIPRESS_DATABASE_URL."""
    import uvicorn

    from fedipress.adapters.asgi import InboxASGI

    service = _service(site)
    if not verbosity.quiet:
        click.echo(f"inbox for {service.urls.handle()} on http://{host}:{port}/ap/inbox", err=True)
    log_to_stderr(verbosity)  # each activity's and each delivery's outcome
    uvicorn.run(
        InboxASGI(service, body_timeout=body_timeout),
        host=host,
        port=port,
        lifespan="on",
        server_header=False,
        log_level="warning" if verbosity.quiet else "info",
        proxy_headers=True,
        # h11, whatever else is installed: the limits below are h11's, and the tested ones.
        http="h11",
        timeout_keep_alive=5,  # seconds an idle keep-alive connection stays open
        limit_concurrency=MAX_CONNECTIONS,  # beyond it uvicorn answers 503 at once
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,  # request line and headers
    )


@click.group()
def followers() -> None:
    """List, export, approve, reject and remove followers."""


@followers.command("list")
@verbosity_options
@site_argument
@click.option("--pending", is_flag=True, help="Only follow requests awaiting approval.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
@handle_errors
def followers_list(verbosity: Verbosity, site: Path, pending: bool, as_json: bool) -> None:
    """List followers (accepted ones, or --pending requests)."""
    store = _store(site)
    try:
        rows = store.list_followers(state="pending" if pending else "accepted", limit=1_000_000)
    finally:
        store.close()  # an open PostgreSQL connection would outlive the command
    for f in rows:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "actor": f.actor_id,
                        "handle": f.handle,
                        "inbox": f.inbox,
                        "shared_inbox": f.shared_inbox,
                        "state": f.state,
                        "since": f.created_at.isoformat(),
                    }
                )
            )
        else:
            handle, actor = printable(f.handle or "-"), printable(f.actor_id)
            click.echo(f"{handle:40} {actor}  since {f.created_at:%Y-%m-%d}")
    if not verbosity.quiet and not as_json:
        click.echo(f"{len(rows)} {'pending' if pending else 'followers'}", err=True)


@followers.command("export")
@verbosity_options
@site_argument
@click.pass_obj
@handle_errors
def followers_export(verbosity: Verbosity, site: Path) -> None:
    """Write every follower as CSV (actor, handle, inbox, shared_inbox, state, since)."""
    store = _store(site)
    try:
        rows = store.list_followers(state=None, limit=1_000_000)
    finally:
        store.close()
    writer = csv.writer(sys.stdout)
    writer.writerow(["actor", "handle", "inbox", "shared_inbox", "state", "since"])
    for f in rows:
        cells = [f.actor_id, f.handle or "", f.inbox, f.shared_inbox or "", f.state]
        writer.writerow([*map(csv_cell, cells), f.created_at.isoformat()])


def _answer(site: Path, actor: str, accept: bool, remove: bool = False) -> str:
    from fedipress.app.followers import answer_follower
    from fedipress.app.wiring import open_federation

    _require_site(site)

    async def run() -> Answer:
        async with open_federation(site) as federation:
            return await answer_follower(federation, actor, accept)

    answer = asyncio.run(run())
    verb = "approved" if accept else ("removed" if remove else "rejected")
    return f"{verb} {actor}; {'sent' if answer.sent else 'queued'} the {answer.reply}"


@followers.command("approve")
@verbosity_options
@click.argument("actor")
@site_argument
@handle_errors
def followers_approve(site: Path, actor: str) -> None:
    """Accept a pending follow request from ACTOR (an actor URL)."""
    click.echo(_answer(site, actor, accept=True))


@followers.command("reject")
@verbosity_options
@click.argument("actor")
@site_argument
@handle_errors
def followers_reject(site: Path, actor: str) -> None:
    """Reject a follow request from ACTOR."""
    click.echo(_answer(site, actor, accept=False))


@followers.command("remove")
@verbosity_options
@click.argument("actor")
@site_argument
@handle_errors
def followers_remove(site: Path, actor: str) -> None:
    """Remove a follower: they get a Reject, which ends the follow on Mastodon."""
    click.echo(_answer(site, actor, accept=False, remove=True))


@click.group()
def interactions() -> None:
    """Likes, boosts, replies and reports the inbox received."""


@interactions.command("list")
@verbosity_options
@site_argument
@click.option("--kind", type=click.Choice(["like", "announce", "reply"]), help="Only this kind.")
@click.option("--pending", is_flag=True, help="Only replies awaiting approval.")
@click.option("--hidden", is_flag=True, help="Only replies you hid.")
@click.option("--actor", metavar="URL", help="Only what this account (an actor URL) sent.")
@click.option("--reports", is_flag=True, help="List reports (Flag activities) instead.")
@handle_errors
def interactions_list(
    site: Path, kind: str | None, pending: bool, hidden: bool, actor: str | None, reports: bool
) -> None:
    """List what the inbox stored, oldest first."""
    # click.Choice has checked `kind` against the InteractionKind names.
    only = cast("InteractionKind | None", kind)
    state: InteractionState | None = "pending" if pending else "hidden" if hidden else None
    store = _store(site)
    try:
        flags = store.list_flags(limit=1000) if reports else []
        rows = (
            []
            if reports
            else store.list_interactions(kind=only, state=state, limit=1000, actor_id=actor)
        )
    finally:
        store.close()
    if reports:
        for flag in flags:
            click.echo(
                f"{flag.received_at:%Y-%m-%d %H:%M} report from {printable(flag.actor_id)}: "
                f"{printable(flag.content or '(no comment)')} "
                f"[{printable(', '.join(flag.object_ids))}]"
            )
        return
    for item in rows:
        when = item.published.strftime("%Y-%m-%d %H:%M") if item.published else "-"
        who, what = printable(item.actor_id), printable(item.object_id)
        state_shown = item.state if item.public else f"{item.state} (not public)"
        line = f"{when} {item.kind:8} {state_shown:8} {who} -> {what}"
        if item.kind == "reply":
            line += f"\n    {printable(item.id)}"
            if item.url and item.url != item.id:
                line += f"\n    {printable(item.url)}"
        click.echo(line)


def _moderate(site: Path, action: Moderation, target: str, of_actor: bool) -> None:
    """Run one moderation action and say what changed; then call the site's build hook
    (FEDIPRESS_BUILD_HOOK_URL), if set, so the pages follow."""
    from fedipress.app.followers import moderate

    store = _store(site)
    try:
        if of_actor:
            changed = moderate(store, action, actor=target)
        else:
            changed = moderate(store, action, target)
    finally:
        store.close()
    verb = {"approve": "approved", "hide": "hid", "delete": "deleted"}[action]
    for item in changed:
        click.echo(f"{verb} {printable(item.id)}")
    _call_build_hook()


def _call_build_hook() -> None:
    import os

    from fedipress.app.wiring import env_flag
    from fedipress.inbox.buildhook import BuildHook
    from fedipress.inbox.setup import ALLOW_PRIVATE_ENV, BUILD_HOOK_ENV

    url = os.environ.get(BUILD_HOOK_ENV, "").strip()
    if url:
        allow_private = env_flag(os.environ, ALLOW_PRIVATE_ENV)
        if not asyncio.run(BuildHook(url, allow_private=allow_private).call()):
            click.echo("note: the build hook failed; build the site yourself", err=True)


def _moderation_command(action: Moderation, summary: str) -> click.Command:
    @verbosity_options
    @click.argument("target")
    @site_argument
    @click.option(
        "--actor", is_flag=True, help="TARGET is an account (actor URL): act on all it sent."
    )
    @handle_errors
    def command(site: Path, target: str, actor: bool) -> None:
        _moderate(site, action, target, actor)

    command.__doc__ = summary
    return click.command(action)(command)


interactions.add_command(
    _moderation_command(
        "approve",
        "Show a reply (pending or hidden) on the blog: TARGET is its id or web address.",
    )
)
interactions.add_command(
    _moderation_command("hide", "Take a reply off the blog, keeping it in the store.")
)
interactions.add_command(
    _moderation_command(
        "delete",
        "Forget a reply; with --actor, every like, boost and reply of that account.",
    )
)


@interactions.command("reject")
@verbosity_options
@click.argument("reply")
@site_argument
@handle_errors
def interactions_reject(site: Path, reply: str) -> None:
    """Delete a reply (the older name of `delete`)."""
    _moderate(site, "delete", reply, False)


@click.group()
def blocks() -> None:
    """Block actors and domains: the inbox drops what they send."""


def _block_target(value: str) -> tuple[BlockKind, str]:
    """An actor URL blocks that actor; a bare host name blocks the domain and its subdomains."""
    value = value.strip()
    if value.startswith(("https://", "http://")):
        return "actor", value
    if not value or any(c in value for c in "/@ \t") or "." not in value:
        raise FedipressError(
            f"'{value}' is neither an actor URL nor a domain",
            hint="give an actor URL (https://social.example/users/spammer) or a domain "
            "(spam.example); for a handle, look up its actor URL first",
        )
    from fedipress.federation.store.sqlcore import normalize_host

    return "domain", normalize_host(value)  # as the store keeps it: lower case, no port


@blocks.command("add")
@verbosity_options
@click.argument("value")
@site_argument
@handle_errors
def blocks_add(site: Path, value: str) -> None:
    """Block VALUE: an actor URL, or a domain (its subdomains too)."""
    kind, target = _block_target(value)
    store = _store(site)
    try:
        added = store.add_block(kind, target, _now())
        follows = kind == "actor" and store.get_follower(target) is not None
    finally:
        store.close()
    click.echo(f"{'blocked' if added else 'already blocked'} {kind} {target}")
    if follows:  # a block stops what they send, not what the blog sends them
        click.echo(
            f"note: they still follow; to end it: fedipress followers remove {target}", err=True
        )


@blocks.command("remove")
@verbosity_options
@click.argument("value")
@site_argument
@handle_errors
def blocks_remove(site: Path, value: str) -> None:
    """Lift the block of VALUE (as `blocks list` prints it)."""
    kind, target = _block_target(value)
    store = _store(site)
    try:
        removed = store.remove_block(kind, target)
    finally:
        store.close()
    if not removed:
        raise FedipressError(f"no block of {kind} '{target}'", hint="see: fedipress blocks list")
    click.echo(f"unblocked {kind} {target}")


@blocks.command("list")
@verbosity_options
@site_argument
@click.pass_obj
@handle_errors
def blocks_list(verbosity: Verbosity, site: Path) -> None:
    """List the blocked actors and domains."""
    store = _store(site)
    try:
        rows = store.list_blocks()
    finally:
        store.close()
    for block in rows:
        click.echo(f"{block.kind:6} {printable(block.value)}  since {block.created_at:%Y-%m-%d}")
    if not verbosity.quiet:
        click.echo(f"{len(rows)} blocked", err=True)
