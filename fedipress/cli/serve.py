"""`fedipress serve`: the click command, and the console side of the preview's reports."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import click

from fedipress.cli.support import (
    Verbosity,
    _echo_err,
    _print_warnings,
    _relative,
    _require_site,
    handle_errors,
    site_argument,
    verbosity_options,
)
from fedipress.config import CONFIG_FILE, load_config
from fedipress.errors import Diagnostic, FedipressError
from fedipress.preview.rebuild import ServeOptions, run_server


class ConsoleReport:
    """The preview's reports on the terminal: progress on stdout, problems on stderr."""

    def __init__(self, verbosity: Verbosity) -> None:
        self.verbosity = verbosity

    def info(self, text: str) -> None:
        if not self.verbosity.quiet:
            click.echo(text)

    def problem(self, text: str) -> None:
        _echo_err(_relative(text))

    def warnings(self, warnings: tuple[Diagnostic, ...]) -> None:
        _print_warnings(warnings, self.verbosity)

    def changed(self, paths: list[str]) -> None:
        if self.verbosity.verbose:
            for path in paths:
                _echo_err(f"changed: {_relative(path)}")


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
        asyncio.run(run_server(site_dir, options, ConsoleReport(verbosity)))
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


__all__ = ["serve", "serve_site"]
