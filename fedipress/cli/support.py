"""What every `fedipress` command shares: verbosity flags, error handling, the SITE argument.

Errors a user can fix print as `path:line:col: message` (exit 1); usage errors exit 2;
tracebacks appear only with --debug or for real bugs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from fedipress.errors import Diagnostic, FedipressError

F = TypeVar("F", bound=Callable[..., Any])
CLOSED_PIPE = 141  # the exit code of a process ended by SIGPIPE in a shell (128 + 13)


@dataclass
class Verbosity:
    quiet: bool = False
    verbose: bool = False
    debug: bool = False


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


def handle_errors(func: F) -> F:
    """Turn FedipressErrors into clean messages and exit code 1; anything else is a bug."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        verbosity: Verbosity = ctx.find_object(Verbosity) or Verbosity()
        try:
            try:
                return func(*args, **kwargs)
            finally:
                sys.stdout.flush()  # a closed pipe shows here, not in the flush at exit
        except BrokenPipeError:  # `fedipress deliveries | head -1`: the reader is gone
            _silence_closed_pipe()
            ctx.exit(CLOSED_PIPE)
        except FedipressError as exc:
            if verbosity.debug:
                traceback.print_exc()
            _echo_err(_printable_lines(_relative(str(exc))))
            cause = exc.__cause__
            while cause is not None and verbosity.verbose:
                _echo_err(_printable_lines(f"  Reason: {cause}"))
                cause = cause.__cause__
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            _echo_err("interrupted")
            ctx.exit(130)
        except Exception:
            traceback.print_exc()
            _echo_err(
                "\nThis is a bug in fedipress, not in your site. Please report it with the "
                "traceback above."
            )
            ctx.exit(70)

    return wrapper  # type: ignore[return-value]


# Characters that must not reach a terminal from remote text: C0 and C1 controls (ESC and
# CSI start escape sequences), DEL, bidi controls that reorder what is shown (Trojan Source),
# and lone surrogates, which cannot even be encoded.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV injection triggers


def printable(text: str) -> str:
    """Remote text (handles, URLs, report texts, error messages) safe to print: every
    control character shown as an escape such as `\\x1b` or `\\u202e`."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _printable_lines(text: str) -> str:
    """A message that may quote remote text (a fetched URL, a server's answer), printable
    line by line: its own line breaks are kept."""
    return "\n".join(map(printable, text.split("\n")))


class PrintableFormatter(logging.Formatter):
    """Log lines on a terminal: what a remote server wrote (an inbox URL, an error answer)
    reaches it with every control character escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return _printable_lines(super().format(record))


def log_to_stderr(verbosity: Verbosity) -> None:
    """Send fedipress's log to standard error for long-running commands: each delivery and
    inbox outcome at info level, or only warnings with --quiet."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("fedipress")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if verbosity.quiet else logging.INFO)
    logger.propagate = False


def csv_cell(text: str) -> str:
    """A CSV cell from remote text: printable, and never a formula a spreadsheet would run
    (a leading `'` makes it text, as OWASP advises)."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _silence_closed_pipe() -> None:
    """Point standard output and error at /dev/null, as the Python docs advise for SIGPIPE:
    what is still buffered is dropped instead of failing again when Python exits."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # no file descriptor (tests)
                os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def _relative(text: str) -> str:
    """Show paths under the current folder as relative paths, as editors expect."""
    cwd = os.getcwd().rstrip("/") + "/"
    return text.replace(cwd, "")


class Progress:
    """A one-line progress display on a terminal; silent when piped or quiet."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if self.enabled:
            sys.stderr.write(f"\rrendering {done}/{total} pages")
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _set_verbosity(flag: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            verbosity = ctx.ensure_object(Verbosity)
            setattr(verbosity, flag, True)
            if flag == "debug":
                verbosity.verbose = True

    return callback


def verbosity_options(func: F) -> F:
    """-q/-v/--debug work after the command name too: `fedipress build -q`."""
    for flag, names, text in (
        ("debug", ("--debug",), "Show tracebacks for errors."),
        ("verbose", ("-v", "--verbose"), "Print more detail, such as error causes."),
        ("quiet", ("-q", "--quiet"), "Print only errors."),
    ):
        func = click.option(
            *names,
            is_flag=True,
            expose_value=False,
            is_eager=True,
            help=text,
            callback=_set_verbosity(flag),
        )(func)
    return func


site_argument = click.argument(
    "site", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)


def build_options(func: F) -> F:
    options = [
        click.option("--drafts", is_flag=True, help="Include posts marked 'draft: true'."),
        click.option("--future", is_flag=True, help="Include posts dated in the future."),
        click.option(
            "--strict", is_flag=True, help="Treat warnings (such as broken links) as errors."
        ),
        click.option("--base-url", help="Override base_url from fedipress.yaml."),
        click.option(
            "--jobs",
            "-j",
            type=click.IntRange(0),
            default=0,
            show_default=True,
            help="Processes for rendering (0: one per core).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _print_warnings(
    warnings: tuple[Diagnostic, ...] | list[Diagnostic], verbosity: Verbosity
) -> None:
    if verbosity.quiet:
        return
    for warning in warnings[:50]:
        _echo_err(_relative(warning.format()))
    if len(warnings) > 50:
        _echo_err(f"... and {len(warnings) - 50} more warnings")


def _require_site(site: Path) -> None:
    if not site.is_dir():
        raise click.BadParameter(f"'{site}' is not a folder", param_hint="SITE")
