"""The build extension that writes the host rules as `_headers` and `_redirects`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fedipress.content.extension import BuildContext
from fedipress.content.output import Output, digest
from fedipress.content.site import Site
from fedipress.hosting import (
    HEADERS_FILE,
    REDIRECTS_FILE,
    header_rules,
    redirect_rules,
    render_headers_file,
    render_redirects_file,
)


@dataclass(frozen=True)
class HostFiles:
    """The build extension that writes `_headers` and `_redirects`."""

    def input_key(self) -> str:
        return ""  # the rules come from the config and the other extensions

    def outputs(self, context: BuildContext) -> list[Output]:
        site, global_key = context.site, context.global_key
        extra = tuple(context.redirects)
        files = {
            HEADERS_FILE: render_headers_file(header_rules(site.config)),
            REDIRECTS_FILE: render_redirects_file(redirect_rules(site.config, extra)),
        }
        return [
            Output(path, digest([global_key, text]), render=_fixed(text.encode()))
            for path, text in files.items()
        ]

    def page_hook(self, site: Site) -> None:
        return None


def _fixed(data: bytes) -> Callable[[], bytes]:
    return lambda: data
