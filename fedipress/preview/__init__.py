"""The local preview: `fedipress serve` builds, serves with the host rules, reloads open tabs
and runs the inbox function beside the site."""
