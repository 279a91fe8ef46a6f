"""`python -m fedipress.cli`, kept working for scripts written before `python -m fedipress`."""

from fedipress.cli import main

main()
