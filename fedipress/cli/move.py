"""`fedipress move`: move an account of the site to a new one, or take a move back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from fedipress.cli.support import (
    Verbosity,
    _require_site,
    handle_errors,
    printable,
    site_argument,
    verbosity_options,
)
from fedipress.errors import FedipressError

# The use cases are imported when the command runs, so that `fedipress --help` starts
# without loading httpx and the store drivers.


@click.command()
@verbosity_options
@site_argument
@click.option(
    "--to",
    "target",
    metavar="HANDLE",
    help="The new account: @user@server (looked up by WebFinger) or its actor URL.",
)
@click.option("--cancel", is_flag=True, help="Take back a move whose Move was not sent yet.")
@click.option(
    "--account",
    metavar="NAME",
    default="",
    help="A topic account of fediverse.accounts (default: the main account).",
)
@click.pass_obj
@handle_errors
def move(verbosity: Verbosity, site: Path, target: str | None, cancel: bool, account: str) -> None:
    """Move the account's followers to a new account: checks that the new account lists
    this one in its aliases (alsoKnownAs), sets moved_to in fedipress.yaml, and the next
    publish sends Move to every follower. The site keeps serving the old actor."""
    from fedipress.app.moving import cancel_move, start_move
    from fedipress.app.wiring import open_federation

    if cancel == bool(target):
        raise FedipressError(
            "give either --to HANDLE or --cancel",
            hint="for example: fedipress move --to @me@social.example",
        )
    _require_site(site)

    async def run() -> str:
        async with open_federation(site) as federation:
            try:
                federation.urls.for_account(account)
            except KeyError:
                raise FedipressError(
                    f"the site has no account '{account}'",
                    hint="topic accounts are listed under 'fediverse.accounts'",
                ) from None
            if cancel:
                old = await cancel_move(federation, site, account)
                return f"cancelled the move to {printable(old)}: moved_to removed"
            assert target is not None
            started = await start_move(federation, site, target, account)
            return (
                f"{printable(started.target)} lists {started.actor} as an alias: moved_to set "
                f"in fedipress.yaml.\nnext: build and deploy, then 'fedipress publish' sends "
                f"the Move to {started.followers} followers ('fedipress move --cancel' "
                "until then)"
            )

    message = asyncio.run(run())
    if not verbosity.quiet:
        click.echo(message)
