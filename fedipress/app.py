"""Use cases: build and check a site. The only place where content meets the outside world
(files, clock, processes) and, later, federation."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from fedipress import __version__
from fedipress.config import Config, load_config
from fedipress.content.cache import CACHE_FORMAT, BuildCache, Entry, text_hash
from fedipress.content.document import parse_document
from fedipress.content.loader import Found, find_sources, find_static
from fedipress.content.markdown import make_markdown, resolve_engine
from fedipress.content.output import Progress, WriteStats, write_outputs
from fedipress.content.outputs import Output, digest
from fedipress.content.pages import PageHook, Planner, check_links
from fedipress.content.site import Site, build_site
from fedipress.content.theme import check_templates, load_theme, make_environment
from fedipress.documents.post import Post
from fedipress.errors import BuildFailed, ContentError, Diagnostic, FedipressError, SourceLocation

CACHE_DIR = Path(".fedipress") / "cache"
PARSE_PARALLEL_THRESHOLD = 200


class Extension(Protocol):
    """A part that adds outputs and <head> tags to a build (the federation documents)."""

    def outputs(self, site: Site, global_key: str) -> list[Output]: ...

    def page_hook(self, site: Site) -> PageHook | None: ...


@dataclass(frozen=True)
class BuildOptions:
    output: Path | None = None  # default: SITE/_site
    drafts: bool = False
    future: bool = False
    strict: bool = False
    base_url: str | None = None
    jobs: int = 0  # 0: one per core
    use_cache: bool = True
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class BuildResult:
    site: Site
    outputs: int
    rendered: int
    unchanged: bool
    parsed: int
    warnings: tuple[Diagnostic, ...]
    seconds: float
    output_dir: Path | None


def _jobs(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


# --- parsing -----------------------------------------------------------------------------

_PARSE_JOB: tuple[Path, Config] | None = None


def _parse_one(
    site_dir: Path, config: Config, md: object, found: Found
) -> tuple[str, str, Post | Diagnostic]:
    path = site_dir / found.source.path
    data = path.read_bytes()
    digest_ = text_hash(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            found.source.path,
            digest_,
            Diagnostic(
                "error",
                f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                SourceLocation(found.source.path),
                "save the file as UTF-8",
            ),
        )
    try:
        return found.source.path, digest_, parse_document(text, found.source, config, md)  # type: ignore[arg-type]
    except FedipressError as exc:
        return found.source.path, digest_, exc.diagnostic()


def _parse_chunk(chunk: list[Found]) -> list[tuple[str, str, Post | Diagnostic]]:
    assert _PARSE_JOB is not None
    site_dir, config = _PARSE_JOB
    md = make_markdown(config.markdown_engine)
    return [_parse_one(site_dir, config, md, f) for f in chunk]


def _parse_all(
    site_dir: Path,
    config: Config,
    todo: list[Found],
    jobs: int,
) -> list[tuple[str, str, Post | Diagnostic]]:
    global _PARSE_JOB
    if jobs <= 1 or len(todo) < PARSE_PARALLEL_THRESHOLD:
        md = make_markdown(config.markdown_engine)
        return [_parse_one(site_dir, config, md, f) for f in todo]
    chunk = max(8, len(todo) // (jobs * 8))
    chunks = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
    _PARSE_JOB = (site_dir, config)
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            return [item for part in pool.imap(_parse_chunk, chunks) for item in part]
    finally:
        _PARSE_JOB = None


@dataclass
class Loaded:
    documents: list[Post]
    entries: dict[str, Entry]
    diagnostics: list[Diagnostic]
    parsed: int


def load_documents(site_dir: Path, config: Config, cache: BuildCache, jobs: int) -> Loaded:
    """Every post and page, from the cache when the file's bytes are unchanged."""
    found = find_sources(site_dir)
    entries: dict[str, Entry] = {}
    todo: list[Found] = []
    for item in found:
        entry = cache.entries.get(item.source.path)
        if (
            entry is not None
            and entry.mtime_ns == item.mtime_ns
            and entry.size == item.size
            and entry.post.resources == item.source.resources
        ):
            entries[item.source.path] = entry
        else:
            todo.append(item)
    # A touched but unchanged file keeps its entry: compare text hashes before re-parsing.
    diagnostics: list[Diagnostic] = []
    by_path = {f.source.path: f for f in todo}
    results = _parse_all(site_dir, config, todo, jobs)
    for source, digest_, result in results:
        item = by_path[source]
        if isinstance(result, Diagnostic):
            diagnostics.append(result)
            cache.entries.pop(source, None)
            continue
        entries[source] = cache.remember(source, item.mtime_ns, item.size, digest_, result)
    cache.forget_missing({f.source.path for f in found})
    documents = [e.post for e in entries.values()]
    return Loaded(documents, entries, diagnostics, len(todo))


# --- building ----------------------------------------------------------------------------


def _guard_output(site_dir: Path, out_dir: Path) -> None:
    resolved = out_dir.resolve()
    if resolved in (
        site_dir.resolve(),
        Path.home().resolve(),
        Path(resolved.anchor),
    ) or site_dir.resolve().is_relative_to(resolved):
        raise FedipressError(
            f"refusing to write the site into '{out_dir}': it would replace the site itself",
            hint="choose an output folder of its own, such as '_site'",
        )


def prepare(site_dir: Path, options: BuildOptions) -> Config:
    config = load_config(site_dir)
    if options.base_url:
        try:
            config = config.with_base_url(options.base_url)
        except ValueError:
            raise FedipressError(
                f"--base-url must be an absolute http(s) URL (got {options.base_url!r})"
            ) from None
    return config


def default_extensions(site_dir: Path, config: Config) -> list[Extension]:
    """The parts every build includes besides the HTML site (host rules, federation)."""
    from fedipress.hosting import HostFiles

    return [HostFiles()]


def build(
    site_dir: Path,
    options: BuildOptions = BuildOptions(),
    extensions: Sequence[Extension] | None = None,
    progress: Progress | None = None,
    write: bool = True,
) -> BuildResult:
    """Build the site into options.output (or only validate it when write is False).

    Raises BuildFailed with every error (and, with strict, every warning) found.
    """
    started = time.perf_counter()
    config = prepare(site_dir, options)
    jobs = _jobs(options.jobs)
    theme = load_theme(site_dir, config)
    env = make_environment(theme, config)
    check_templates(env, theme)
    if extensions is None:
        extensions = default_extensions(site_dir, config)
    engine = resolve_engine(config.markdown_engine)
    make_markdown(engine)  # fail early when the rust engine is asked for but missing
    salt = digest([__version__, CACHE_FORMAT, config.timezone, config.permalink, engine])
    cache_dir = site_dir / CACHE_DIR if (options.use_cache and write) else None
    cache = BuildCache(cache_dir, salt)
    loaded = load_documents(site_dir, config, cache, jobs)
    site, clashes = build_site(
        config, loaded.documents, options.now(), options.drafts, options.future
    )
    diagnostics = loaded.diagnostics + clashes
    if any(d.severity == "error" for d in diagnostics):
        raise BuildFailed(diagnostics)

    def full(post: Post) -> Post:
        entry = loaded.entries[post.source]
        return _with_content(post, cache.content(entry))

    fingerprints = {s: (e.full, e.card) for s, e in loaded.entries.items()}
    pages_key = [fingerprints[p.source][1] for p in site.pages]
    global_key = digest([__version__, repr(config), theme.fingerprint(), pages_key])
    hooks = [h for ext in extensions if (h := ext.page_hook(site)) is not None]
    planner = Planner(site, env, global_key, full, fingerprints, hooks)
    outputs = planner.plan()
    for ext in extensions:
        outputs += ext.outputs(site, global_key)
    outputs = _with_static(outputs, site, site_dir, theme.static_dirs, diagnostics)
    known = {o.path for o in outputs}
    shown = [d for d in site.posts + site.pages]
    diagnostics += check_links(shown, config, known, set(loaded.entries))
    warnings = tuple(
        sorted(set(d for d in diagnostics if d.severity == "warning"), key=Diagnostic.sort_key)
    )
    if options.strict and warnings:
        raise BuildFailed(warnings)

    out_dir = options.output or site_dir / "_site"
    if write:
        _guard_output(site_dir, out_dir)
        manifest_key = str(out_dir.resolve())
        previous = cache.manifests.get(manifest_key, {})
        stats = write_outputs(outputs, out_dir, previous, jobs, progress)
        cache.manifests[manifest_key] = {o.path: o.key for o in outputs}
        cache.save()
    else:
        stats = _render_in_memory(outputs)
    return BuildResult(
        site,
        stats.total,
        stats.rendered,
        stats.unchanged,
        loaded.parsed,
        warnings,
        time.perf_counter() - started,
        out_dir if write else None,
    )


def _with_content(post: Post, content: str) -> Post:
    import dataclasses

    return dataclasses.replace(post, content=content)


def _render_in_memory(outputs: Sequence[Output]) -> WriteStats:
    problems = []
    for output in outputs:
        if output.render is None:
            continue
        try:
            output.render()
        except FedipressError as exc:
            problems.append(exc.diagnostic())
    if problems:
        raise BuildFailed(problems)
    return WriteStats(len(outputs), len(outputs), unchanged=False)


def _with_static(
    outputs: list[Output],
    site: Site,
    site_dir: Path,
    theme_static: Sequence[Path],
    diagnostics: list[Diagnostic],
) -> list[Output]:
    """Add theme and site static files and page-bundle resources; generated files win."""
    files = find_static([*theme_static, site_dir / "static"])
    generated = {o.path for o in outputs}
    result = list(outputs)
    for rel, static in sorted(files.items()):
        if rel in generated:
            diagnostics.append(
                Diagnostic(
                    "warning",
                    f"static file '{rel}' is hidden by a generated page",
                    SourceLocation(str(static.path)),
                    "rename or remove the file",
                )
            )
            continue
        result.append(
            Output(
                rel,
                digest(["static", str(static.path), static.mtime_ns, static.size]),
                copy_from=static.path,
            )
        )
    for post in site.posts + site.pages:
        if not post.bundle:
            continue
        for resource in post.resources:
            path = site_dir / post.bundle / resource
            st = path.stat()
            rel = post.url.lstrip("/") + resource
            if rel in generated:
                continue
            result.append(
                Output(rel, digest(["res", str(path), st.st_mtime_ns, st.st_size]), copy_from=path)
            )
    return result


def check(
    site_dir: Path,
    options: BuildOptions = BuildOptions(),
    extensions: Sequence[Extension] | None = None,
) -> BuildResult:
    """Validate config, content and theme, rendering every page in memory; writes nothing."""
    return build(site_dir, options, extensions, write=False)


__all__ = ["BuildOptions", "BuildResult", "ContentError", "build", "check"]
