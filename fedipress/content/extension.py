"""The build extension protocol: what a part that adds outputs to a build sees and returns.

It sits in the pipeline, below its implementers (host rules and federation documents in
`fedipress.app`), so the pipeline never imports the use cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from fedipress.content.output import Output
from fedipress.content.pages import PageHook
from fedipress.content.site import Site
from fedipress.documents.post import Post
from fedipress.errors import Diagnostic
from fedipress.hosting import RedirectRule


@dataclass
class BuildContext:
    """What an Extension sees of a build."""

    site: Site
    global_key: str  # changes with fedipress, the config, the theme and the site's pages
    full: Callable[[Post], Post]  # a post with its HTML (posts travel without it)
    fingerprint: Callable[[Post], str]  # a hash of all `full` returns
    now: datetime
    diagnostics: list[Diagnostic] = field(default_factory=list)  # extensions may add
    redirects: list[RedirectRule] = field(default_factory=list)  # for _redirects (HostFiles)
    # Files beside the sources (path relative to the site folder -> bytes), written by the
    # writer only when the build writes and after the --strict check passed.
    site_files: dict[str, bytes] = field(default_factory=dict)


class Extension(Protocol):
    """A part that adds outputs and <head> tags to a build (host rules, federation)."""

    def outputs(self, context: BuildContext) -> list[Output]: ...

    def page_hook(self, site: Site) -> PageHook | None: ...

    def input_key(self) -> str:
        """A hash of the files besides content, config and theme that the outputs read."""
        ...
