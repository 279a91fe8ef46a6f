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
    _relative,
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


def _store(site: Path, preview: bool = False, quiet: bool = False) -> Store:
    """The store alone, for commands that need no key: only in a folder that is a site with
    a `fediverse:` section (a database is never created elsewhere), and saying which store
    it is, since the preview keeps its own."""
    from fedipress.app.wiring import describe_site_store, fediverse_config, open_site_store

    _require_site(site)
    fediverse_config(site)  # refuses a folder that is not a Fediverse site, as build does
    verbosity = click.get_current_context().find_object(Verbosity) or Verbosity()
    if not (verbosity.quiet or quiet):
        where = _relative(describe_site_store(site, preview=preview))
        click.echo(f"store: {printable(where)}", err=True)
    return open_site_store(site, preview=preview)


def _preview_note(site: Path, preview: bool, count: int) -> None:
    """The preview's followers are not the site's: say where they are when the list is empty."""
    from fedipress.app.wiring import PREVIEW_DATABASE, preview_store_exists

    if not preview and count == 0 and preview_store_exists(site):
        click.echo(
            f"note: `fedipress serve` keeps the preview's followers in {PREVIEW_DATABASE}; "
            "add --preview to list them",
            err=True,
        )


preview_option = click.option(
    "--preview",
    is_flag=True,
    help="Use the store of `fedipress serve` (.fedipress/serve-inbox.db) instead.",
)


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


account_option = click.option(
    "--account",
    metavar="NAME",
    default="",
    help="A topic account of fediverse.accounts (default: the main account).",
)


def _check_account(site: Path, account: str) -> None:
    """A clear error for an account the site does not have."""
    if not account:
        return
    from fedipress.config import load_config

    fedi = load_config(site).fediverse
    names = [a.username for a in fedi.accounts] if fedi else []
    if account not in names:
        raise FedipressError(
            f"the site has no account '{account}'",
            hint=f"its topic accounts: {', '.join(names)}"
            if names
            else "it has no topic "
            "accounts: they are listed under 'fediverse.accounts' in fedipress.yaml",
        )


def _accounts(site: Path) -> list[str]:
    """The site's accounts: '' (the main one) and the topic accounts."""
    from fedipress.config import load_config

    fedi = load_config(site).fediverse
    return ["", *(a.username for a in fedi.accounts)] if fedi else [""]


@followers.command("list")
@verbosity_options
@site_argument
@click.option("--pending", is_flag=True, help="Only follow requests awaiting approval.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--moved",
    is_flag=True,
    help="Those who left after the account moved: they re-followed its new account.",
)
@account_option
@preview_option
@click.pass_obj
@handle_errors
def followers_list(
    verbosity: Verbosity | None,
    site: Path,
    pending: bool,
    as_json: bool,
    moved: bool,
    account: str,
    preview: bool,
) -> None:
    """List followers (accepted ones, or --pending requests) of the main account or of a
    topic account (--account)."""
    verbosity = verbosity or Verbosity()
    _check_account(site, account)
    store = _store(site, preview, quiet=as_json)  # JSON lines alone, nothing else
    try:
        departed = store.list_moved_followers(account)
        rows = (
            []
            if moved
            else store.list_followers(
                state="pending" if pending else "accepted", limit=1_000_000, account=account
            )
        )
    finally:
        store.close()  # an open PostgreSQL connection would outlive the command
    if moved:
        for m in departed:
            line = f"{printable(m.actor_id)}  re-followed {printable(m.target)}"
            click.echo(
                json.dumps(
                    {"actor": m.actor_id, "target": m.target, "since": m.moved_at.isoformat()}
                )
                if as_json
                else f"{line}  on {m.moved_at:%Y-%m-%d}"
            )
        if not verbosity.quiet and not as_json:
            click.echo(f"{len(departed)} re-followed the new account", err=True)
        return
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
        if departed:
            # Mastodon follows the move target, then undoes the old follow: those Undos are
            # how the blog knows who followed along (FEDERATION.md §8.3).
            click.echo(
                f"{len(departed)} left after the move and re-followed the new account "
                "(see --moved)",
                err=True,
            )
        _preview_note(site, preview, len(rows))


@followers.command("export")
@verbosity_options
@site_argument
@account_option
@preview_option
@handle_errors
def followers_export(site: Path, account: str, preview: bool) -> None:
    """Write every follower of an account as CSV (actor, handle, inbox, shared_inbox, state,
    since)."""
    _check_account(site, account)
    store = _store(site, preview)
    try:
        rows = store.list_followers(state=None, limit=1_000_000, account=account)
    finally:
        store.close()
    writer = csv.writer(sys.stdout)
    writer.writerow(["actor", "handle", "inbox", "shared_inbox", "state", "since"])
    for f in rows:
        cells = [f.actor_id, f.handle or "", f.inbox, f.shared_inbox or "", f.state]
        writer.writerow([*map(csv_cell, cells), f.created_at.isoformat()])


def _answer(site: Path, actor: str, accept: bool, remove: bool = False, account: str = "") -> str:
    from fedipress.app.followers import answer_follower
    from fedipress.app.wiring import open_federation
    from fedipress.cli.publish import say_store

    _require_site(site)
    verbosity = click.get_current_context().find_object(Verbosity) or Verbosity()
    say_store(site, verbosity)

    async def run() -> Answer:
        async with open_federation(site) as federation:
            return await answer_follower(federation, actor, accept, account)

    answer = asyncio.run(run())
    verb = "approved" if accept else ("removed" if remove else "rejected")
    return f"{verb} {actor}; {'sent' if answer.sent else 'queued'} the {answer.reply}"


@followers.command("approve")
@verbosity_options
@click.argument("actor")
@site_argument
@account_option
@handle_errors
def followers_approve(site: Path, actor: str, account: str) -> None:
    """Accept a pending follow request from ACTOR (an actor URL)."""
    click.echo(_answer(site, actor, accept=True, account=account))


@followers.command("reject")
@verbosity_options
@click.argument("actor")
@site_argument
@account_option
@handle_errors
def followers_reject(site: Path, actor: str, account: str) -> None:
    """Reject a follow request from ACTOR."""
    click.echo(_answer(site, actor, accept=False, account=account))


@followers.command("remove")
@verbosity_options
@click.argument("actor")
@site_argument
@account_option
@handle_errors
def followers_remove(site: Path, actor: str, account: str) -> None:
    """Remove a follower: they get a Reject, which ends the follow on Mastodon."""
    click.echo(_answer(site, actor, accept=False, remove=True, account=account))


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
@preview_option
@handle_errors
def interactions_list(
    site: Path,
    kind: str | None,
    pending: bool,
    hidden: bool,
    actor: str | None,
    reports: bool,
    preview: bool,
) -> None:
    """List what the inbox stored, oldest first."""
    # click.Choice has checked `kind` against the InteractionKind names.
    only = cast("InteractionKind | None", kind)
    state: InteractionState | None = "pending" if pending else "hidden" if hidden else None
    store = _store(site, preview)
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


def _moderate(site: Path, action: Moderation, target: str, of_actor: bool, preview: bool) -> None:
    """Run one moderation action and say what changed; then call the site's build hook
    (FEDIPRESS_BUILD_HOOK_URL), if set, so the pages follow. The preview's store needs no
    hook: `fedipress serve` rebuilds the pages it touches by itself."""
    from fedipress.app.followers import moderate

    store = _store(site, preview)
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
    if not preview:
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
    @preview_option
    @handle_errors
    def command(site: Path, target: str, actor: bool, preview: bool) -> None:
        _moderate(site, action, target, actor, preview)

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
@preview_option
@handle_errors
def interactions_reject(site: Path, reply: str, preview: bool) -> None:
    """Delete a reply (the older name of `delete`)."""
    _moderate(site, "delete", reply, False, preview)


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
@preview_option
@handle_errors
def blocks_add(site: Path, value: str, preview: bool) -> None:
    """Block VALUE: an actor URL, or a domain (its subdomains too)."""
    kind, target = _block_target(value)
    store = _store(site, preview)
    try:
        added = store.add_block(kind, target, _now())
        follows = kind == "actor" and any(
            store.get_follower(target, account) for account in _accounts(site)
        )
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
@preview_option
@handle_errors
def blocks_remove(site: Path, value: str, preview: bool) -> None:
    """Lift the block of VALUE (as `blocks list` prints it)."""
    kind, target = _block_target(value)
    store = _store(site, preview)
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
@preview_option
@click.pass_obj
@handle_errors
def blocks_list(verbosity: Verbosity | None, site: Path, preview: bool) -> None:
    """List the blocked actors and domains."""
    verbosity = verbosity or Verbosity()
    store = _store(site, preview)
    try:
        rows = store.list_blocks()
    finally:
        store.close()
    for block in rows:
        click.echo(f"{block.kind:6} {printable(block.value)}  since {block.created_at:%Y-%m-%d}")
    if not verbosity.quiet:
        click.echo(f"{len(rows)} blocked", err=True)
