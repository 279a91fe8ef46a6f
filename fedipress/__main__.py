"""`python -m fedipress`: the command line, as the `fedipress` script runs it."""

from fedipress.cli import main

main()
