"""The command line: click only. Each command parses its flags, calls one use case, prints."""

from fedipress.cli.main import main

__all__ = ["main"]
