"""Themes: where templates and theme assets come from, and the Jinja2 environment.

Lookup order for a template: the site's `templates/`, then `themes/<name>/templates` in the
site, then the bundled theme of that name, then the bundled default theme. Undefined
variables are errors, so a typo in a theme fails the build instead of printing nothing.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from fedipress.config import Config
from fedipress.content.loader import Boundary, boundary_for, contained, walk_files
from fedipress.documents.matrix import matrix_to
from fedipress.errors import SourceLocation, ThemeError

REQUIRED_TEMPLATES = (
    "index.html",
    "post.html",
    "page.html",
    "tag.html",
    "tags.html",
    "archive.html",
    "404.html",
)


def bundled_themes_dir() -> Path:
    """Inside a wheel the themes ship as fedipress/_themes; in a checkout they sit beside it."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_themes", here.parent / "themes"):
        if candidate.is_dir():
            return candidate
    raise ThemeError(
        "the bundled themes are missing from this installation", hint="reinstall fedipress"
    )


@dataclass(frozen=True)
class Theme:
    name: str
    template_dirs: tuple[Path, ...]  # most specific first
    static_dirs: tuple[Path, ...]  # most specific last (later ones win)
    site_dir: Path = Path(".")  # symbolic links in the site's folders must stay inside it

    def fingerprint(self) -> str:
        """A hash of every template the theme can load: any change re-renders every page."""
        digest = hashlib.blake2b(digest_size=16)
        for directory in self.template_dirs:
            for path in sorted(walk_files(directory, self.site_dir)):
                digest.update(str(path.relative_to(directory)).encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()


def load_theme(site_dir: Path, config: Config) -> Theme:
    """Resolve the theme folders; raise ThemeError when the named theme does not exist."""
    bundled = bundled_themes_dir()
    candidates = [site_dir / "themes" / config.theme, bundled / config.theme]
    found = [c for c in candidates if c.is_dir()]
    if not found:
        raise ThemeError(
            f"theme '{config.theme}' not found",
            SourceLocation(config.path),
            f"put it in '{site_dir / 'themes' / config.theme}' or use 'theme: default'",
        )
    chain = [found[0]]
    if chain[0] != bundled / "default":
        chain.append(bundled / "default")  # a theme may override only some templates
    template_dirs = [site_dir / "templates"] + [t / "templates" for t in chain]
    static_dirs = [t / "static" for t in reversed(chain)]
    return Theme(
        config.theme,
        tuple(d for d in template_dirs if d.is_dir()),
        tuple(d for d in static_dirs if d.is_dir()),
        site_dir,
    )


class _ContainedLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader that refuses a template reached through a symbolic link leaving
    its folder's boundary (the site, or the bundled theme), or looping."""

    def __init__(self, directories: Sequence[Path], site_dir: Path) -> None:
        super().__init__([str(d) for d in directories])
        self.boundaries: list[tuple[str, Boundary]] = [
            (str(d), boundary_for(d, site_dir)) for d in directories
        ]

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = jinja2.loaders.split_template_path(template)
        for directory, boundary in self.boundaries:
            candidate = posixpath.join(directory, *pieces)
            if os.path.lexists(candidate):
                if contained(candidate, boundary) is not None:  # raises on a loop or escape
                    break
        return super().get_source(environment, template)


def _date(value: datetime | None, fmt: str = "%-d %B %Y") -> str:
    return value.strftime(fmt) if value else ""


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def make_environment(
    theme: Theme, config: Config, bytecode_dir: Path | None = None
) -> jinja2.Environment:
    """The Jinja environment; `bytecode_dir` keeps compiled templates between builds."""
    cache = None
    if bytecode_dir is not None:
        bytecode_dir.mkdir(parents=True, exist_ok=True)
        cache = jinja2.FileSystemBytecodeCache(str(bytecode_dir))
    env = jinja2.Environment(
        bytecode_cache=cache,
        loader=_ContainedLoader(theme.template_dirs, theme.site_dir),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["url"] = config.url
    env.filters["absolute_url"] = config.absolute_url
    env.filters["date"] = _date
    env.filters["isoformat"] = _iso
    env.filters["matrix_to"] = matrix_to
    return env


def check_templates(
    env: jinja2.Environment, theme: Theme, names: Sequence[str] = REQUIRED_TEMPLATES
) -> None:
    """Load every template the build needs (`names`), and everything they extend or
    include, so a missing file or a syntax error surfaces before any rendering."""
    pending = list(names)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        get_template(env, name)
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        for ref in jinja2.meta.find_referenced_templates(env.parse(source)):
            if ref is not None and ref not in seen:
                pending.append(ref)


def get_template(env: jinja2.Environment, name: str) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        missing = exc.name or name
        raise ThemeError(
            f"template '{missing}' not found",
            None,
            "add it to the site's templates/ folder or to the theme",
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ThemeError(
            f"template syntax error: {exc.message}",
            SourceLocation(exc.filename or exc.name or name, exc.lineno),
            "see https://jinja.palletsprojects.com/templates/",
        ) from exc


def render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """Render a template; Jinja errors become ThemeErrors naming the template and line."""
    template = get_template(env, name)
    try:
        return template.render(context)
    except jinja2.UndefinedError as exc:
        raise ThemeError(
            f"template '{name}': {exc.message}",
            _template_location(exc, name),
            "check the variable name; docs/themes.md lists what each template receives",
        ) from exc
    except jinja2.TemplateError as exc:
        raise ThemeError(f"template '{name}': {exc}", _template_location(exc, name)) from exc


def _template_location(exc: BaseException, name: str) -> SourceLocation:
    """Find the deepest template frame in the traceback: that is the line at fault."""
    location = SourceLocation(name)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".xml", ".txt", ".j2")):
            location = SourceLocation(filename, tb.tb_lineno)
        tb = tb.tb_next
    return location


_LITERAL_ID = re.compile(r"""\sid=["']([\w:.-]+)["']""")


def page_ids(theme: Theme) -> frozenset[str]:
    """The ids written literally in the theme's templates (`id="main"`): a page has them
    besides the ids of its content, so `#main` links are not broken."""
    ids: set[str] = set()
    for directory in theme.template_dirs:
        for path in walk_files(directory, theme.site_dir):
            ids.update(_LITERAL_ID.findall(path.read_text(encoding="utf-8", errors="replace")))
    return frozenset(ids)
