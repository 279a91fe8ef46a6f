"""`fedipress doctor`: check a deployed site the way other servers see it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fedipress.cli.support import (
    Verbosity,
    _require_site,
    handle_errors,
    printable,
    verbosity_options,
)

if TYPE_CHECKING:
    from fedipress.app.doctor import DoctorReport

# The use case is imported when the command runs, so that `fedipress --help` and the other
# commands start without loading httpx.

MARKS = {"pass": "✓", "fail": "✗", "skip": "-"}
ASCII_MARKS = {"pass": "ok", "fail": "FAIL", "skip": "skip"}


@click.command()
@verbosity_options
@click.argument("target", default=".", required=False, metavar="[SITE | URL]")
@click.option(
    "--base-url",
    metavar="URL",
    help="Check SITE at this address instead of its base_url (a preview, a staging copy).",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Reach loopback and private addresses (a server on this machine or network); "
    "also FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, for CI.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.5, max=120),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@click.pass_obj
@handle_errors
def doctor(
    verbosity: Verbosity,
    target: str,
    base_url: str | None,
    allow_private: bool,
    as_json: bool,
    timeout: float,
) -> None:
    """Check a deployed site over HTTP(S) as other servers see it: WebFinger, the actor,
    a post, NodeInfo, the inbox. Prints a fix for each problem; exits 1 if there is one.

    TARGET is the site folder (the deployed base_url, the site's key) or the site's URL.
    It only reads: no activity is sent and no store is opened."""
    from fedipress.app.doctor import diagnose, site_target, url_target
    from fedipress.app.wiring import ALLOW_PRIVATE_ENV, env_flag

    if "://" in target:
        if base_url:
            raise click.UsageError("--base-url goes with a site folder, not a URL")
        checked = url_target(target)
    else:
        _require_site(Path(target))
        checked = site_target(Path(target), base_url)
    allow = allow_private or env_flag(os.environ, ALLOW_PRIVATE_ENV)
    report = asyncio.run(diagnose(checked, allow_private=allow, timeout=timeout))
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report, verbosity)
    if not report.ok:
        click.get_current_context().exit(1)


def _print_report(report: DoctorReport, verbosity: Verbosity) -> None:
    marks = MARKS if _can_print("✓✗") else ASCII_MARKS
    if not verbosity.quiet:
        host = f" ({report.host})" if report.host else ""
        click.echo(f"Checking {printable(report.url)}{printable(host)}")
    for check in report.checks:
        if verbosity.quiet and check.status != "fail":
            continue
        line = f"{marks[check.status]} {check.title}"
        if check.detail:
            line += f": {check.detail}"
        if check.fix:
            line += f" → fix: {check.fix}" if marks is MARKS else f" -> fix: {check.fix}"
        click.echo(printable(line))
    passed, failed, skipped = (report.count(s) for s in ("pass", "fail", "skip"))
    summary = f"{passed} passed, {failed} failed, {skipped} skipped"
    click.echo(summary + ("" if failed else ": the deployment looks right"))


def _can_print(text: str) -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
