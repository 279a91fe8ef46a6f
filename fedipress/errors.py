"""Errors a user can act on, and the diagnostics a build collects.

    FedipressError          every error a user can act on; the CLI prints it, exit 1
      ConfigError           bad or missing fedipress.yaml values
      ContentError          bad front matter, duplicate URLs, broken links (under --strict)
      ThemeError            missing template, Jinja syntax or undefined-variable errors
      StoreError            database unreachable, migration mismatch
        StoreConnectionLost a connection broke mid-transaction; the next call reconnects
      BuildFailed           several diagnostics from one build, reported together

Anything that is not a FedipressError is a bug: the CLI shows its traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

MAX_REPORTED = 50


def counted(number: int, noun: str) -> str:
    """'1 post', '2 posts': a count with its noun, singular or plural (regular nouns)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A place in a source file; line and column are 1-based, 0 means unknown."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.path}:{self.line}:{self.column}"
        if self.line:
            return f"{self.path}:{self.line}"
        return self.path


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a site: printed as `path:line:col: message`, then a hint."""

    severity: Literal["error", "warning"]
    message: str
    location: SourceLocation | None = None
    hint: str = ""

    def sort_key(self) -> tuple[SourceLocation, str]:
        return (self.location or SourceLocation(""), self.message)

    def format(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        label = "warning: " if self.severity == "warning" else ""
        text = f"{prefix}{label}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class FedipressError(Exception):
    """An error the user can fix; carries where it happened and a hint."""

    def __init__(
        self, message: str, location: SourceLocation | None = None, hint: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def diagnostic(self) -> Diagnostic:
        return Diagnostic("error", self.message, self.location, self.hint)

    def __str__(self) -> str:
        return self.diagnostic().format()


class ConfigError(FedipressError):
    pass


class ContentError(FedipressError):
    pass


class ThemeError(FedipressError):
    pass


class StoreError(FedipressError):
    pass


class StoreConnectionLost(StoreError):
    """The database connection broke during a transaction, which therefore rolled back (or,
    if COMMIT itself failed, may have landed). The store reconnects on its next use."""


class BuildFailed(FedipressError):
    """Every error of one build, sorted by location and capped."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = sorted(set(diagnostics), key=Diagnostic.sort_key)
        errors = sum(1 for d in self.diagnostics if d.severity == "error")
        warnings = len(self.diagnostics) - errors
        parts = [counted(errors, "error")] if errors else []
        if warnings:
            parts.append(f"{counted(warnings, 'warning')} (fatal with --strict)")
        super().__init__("build failed: " + ", ".join(parts))

    def __str__(self) -> str:
        shown = self.diagnostics[:MAX_REPORTED]
        lines = [d.format() for d in shown]
        if len(self.diagnostics) > MAX_REPORTED:
            lines.append(f"... and {len(self.diagnostics) - MAX_REPORTED} more")
        lines.append(self.message)
        return "\n".join(lines)


def unreadable(path: str, exc: OSError) -> FedipressError:
    """A site file that exists but cannot be read (a loop of symbolic links, a folder in
    its place, no permission), as an error naming the file instead of a crash."""
    if exc.errno == errno.ELOOP:
        return FedipressError(
            "symbolic link loop", SourceLocation(path), "remove the link or fix its target"
        )
    reason = (exc.strerror or type(exc).__name__).lower()
    return FedipressError(
        f"cannot read the file: {reason}", SourceLocation(path), "check the file and its rights"
    )
