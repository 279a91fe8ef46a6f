"""Build and check a site: the content pipeline run over the site folder, with the build
extensions (host rules, federation documents), the cache and the one writer."""

from __future__ import annotations

import dataclasses
import html
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import jinja2

from fedipress import __version__
from fedipress.app.checks import DocumentChecker
from fedipress.app.conversations import Conversations
from fedipress.app.federation_docs import FederationDocuments
from fedipress.app.host_files import HostFiles
from fedipress.app.parse import load_documents
from fedipress.config import Config, load_config
from fedipress.content.cache import (
    CACHE_FORMAT,
    BuildCache,
    Snapshot,
)
from fedipress.content.document import parse_document
from fedipress.content.extension import BuildContext, Extension
from fedipress.content.loader import Found, StaticFile, find_sources, find_static
from fedipress.content.markdown import make_markdown, resolve_engine
from fedipress.content.output import Output, digest
from fedipress.content.pages import LinkTargets, Planner, check_images, check_links
from fedipress.content.site import Site, build_site
from fedipress.content.theme import (
    Theme,
    check_templates,
    load_theme,
    make_environment,
    page_ids,
)
from fedipress.content.writer import (
    Progress,
    WriteStats,
    check_bytes,
    scan_file,
    write_outputs,
    write_site_files,
)
from fedipress.documents.post import Post
from fedipress.errors import (
    BuildFailed,
    ContentError,
    Diagnostic,
    FedipressError,
    SourceLocation,
    ThemeError,
)
from fedipress.hosting import RedirectRule, header_rules, redirect_rules

CACHE_DIR = Path(".fedipress") / "cache"
THEME_CHECKED = "theme checked"  # cache.meta: the theme fingerprint last checked in full


@dataclass(frozen=True)
class BuildOptions:
    output: Path | None = None  # default: SITE/_site
    drafts: bool = False
    future: bool = False
    strict: bool = False
    base_url: str | None = None
    jobs: int = 0  # 0: one per core
    use_cache: bool = True
    record_ids: bool = False  # update published-ids.json (fedipress build does)
    public_key: Path | None = None  # publish this key instead of the site's (serve's dev key)
    # The store to read likes, boosts and replies from (serve's own); default: the inbox's
    # (FEDIPRESS_DATABASE_URL, or .fedipress/inbox.db when it exists), else its public document.
    interactions_database: str | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class BuildResult:
    config: Config
    posts: int
    pages: int
    site: Site | None  # None when the inputs had not changed and nothing was planned
    outputs: int
    rendered: int
    unchanged: bool
    parsed: int
    warnings: tuple[Diagnostic, ...]
    seconds: float
    output_dir: Path | None
    redirects: tuple[RedirectRule, ...] = ()  # added by extensions, as in _redirects


def _jobs(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


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


def default_extensions(site_dir: Path, config: Config, options: BuildOptions) -> list[Extension]:
    """The parts every build includes besides the HTML site (host rules, federation)."""
    extensions: list[Extension] = []
    if config.fediverse is not None:
        conversations = Conversations(site_dir, config, database_url=options.interactions_database)
        extensions.append(
            FederationDocuments(
                site_dir, config, options.record_ids, options.public_key, conversations
            )
        )
        extensions.append(conversations)
    return [*extensions, HostFiles()]  # last: it writes the rules the others add


def _inputs_key(
    config: Config,
    options: BuildOptions,
    theme_key: str,
    found: Sequence[Found],
    static: Sequence[StaticFile],
    site_dir: Path,
    extensions: Sequence[Extension],
) -> str:
    """Everything a build reads, by stat: equal keys mean an identical output folder."""
    resources = []
    for item in found:
        for resource in item.source.resources:
            st = os.stat(site_dir / item.source.bundle / resource)
            resources.append((item.source.bundle, resource, st.st_mtime_ns, st.st_size, st.st_mode))
    return digest(
        [
            __version__,
            repr(config),
            options.drafts,
            options.future,
            theme_key,
            [(f.source.path, f.mtime_ns, f.size) for f in found],
            [(s.output, str(s.path), s.mtime_ns, s.size, s.mode) for s in static],
            resources,
            [ext.input_key() for ext in extensions],
        ]
    )


def _valid_until(documents: Sequence[Post], now: datetime, options: BuildOptions) -> float | None:
    """When a post now hidden for being in the future becomes due, the output changes."""
    if options.future:
        return None
    due = [d.date.timestamp() for d in documents if d.date is not None and d.date > now]
    return min(due) if due else None


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
    if extensions is None:
        extensions = default_extensions(site_dir, config, options)
    engine = resolve_engine(config.markdown_engine)
    salt = digest([__version__, CACHE_FORMAT, config.timezone, config.permalink, engine])
    cache_dir = site_dir / CACHE_DIR if (options.use_cache and write) else None
    cache = BuildCache(cache_dir, salt)
    out_dir = options.output or site_dir / "_site"
    manifest_key = str(out_dir.resolve())
    now = options.now()

    found = find_sources(site_dir)
    static = list(find_static([*theme.static_dirs, site_dir / "static"], site_dir).values())
    theme_key = theme.fingerprint()
    inputs = _inputs_key(config, options, theme_key, found, static, site_dir, extensions)
    snapshot = cache.snapshots.get(manifest_key)
    if (
        write
        and snapshot is not None
        and snapshot.inputs == inputs
        and (snapshot.valid_until is None or now.timestamp() < snapshot.valid_until)
        and out_dir.is_dir()
    ):
        warnings = snapshot.warnings
        if options.strict and warnings:
            raise BuildFailed(warnings)
        return BuildResult(
            config,
            snapshot.posts,
            snapshot.pages,
            None,
            snapshot.outputs,
            0,
            True,
            0,
            warnings,
            time.perf_counter() - started,
            out_dir,
            snapshot.extra.get("redirects", ()),
        )

    env = make_environment(theme, config, cache_dir / "jinja" if cache_dir else None)
    if cache.meta.get(THEME_CHECKED) != theme_key:  # parsing every template costs
        check_templates(env, theme)
    make_markdown(engine)  # fail early when the rust engine is asked for but missing
    loaded = load_documents(site_dir, config, cache, jobs, found)
    site, clashes = build_site(config, loaded.documents, now, options.drafts, options.future)
    line_of = _line_finder(site_dir)
    diagnostics = list(config.notes) + loaded.diagnostics + clashes
    diagnostics += [w for d in loaded.documents for w in d.warnings]
    diagnostics += _check_chosen_templates(env, theme, site.posts + site.pages, line_of)
    if any(d.severity == "error" for d in diagnostics):
        cache.save()  # keep what did parse, so the fixed build is quick
        raise BuildFailed(diagnostics)

    def full(post: Post) -> Post:
        entry = loaded.entries[post.source]
        try:
            return dataclasses.replace(post, content=cache.content(entry))
        except FileNotFoundError:  # the HTML cache was cleaned by hand: render again
            text = (site_dir / post.source).read_text(encoding="utf-8")
            source = next(f.source for f in found if f.source.path == post.source)
            fresh = parse_document(text, source, config, make_markdown(engine))
            return dataclasses.replace(post, content=fresh.content)

    prints = {s: (e.full, e.card) for s, e in loaded.entries.items()}
    pages_key = [prints[p.source][1] for p in site.pages]
    global_key = digest([__version__, repr(config), theme_key, pages_key])
    hooks = [h for ext in extensions if (h := ext.page_hook(site)) is not None]
    planner = Planner(site, env, global_key, full, prints, hooks)
    outputs = planner.plan()

    def fingerprint(post: Post) -> str:
        return digest([prints[post.source][0], sorted(planner.md_links(post).items())])

    # Extensions see posts as the pages show them: links to Markdown files resolved.
    context = BuildContext(site, global_key, planner.with_links, fingerprint, now)
    for ext in extensions:
        outputs += ext.outputs(context)
    diagnostics += context.diagnostics
    outputs = _with_static(outputs, site, site_dir, static, diagnostics)
    known = {o.path for o in outputs}
    shown = site.posts + site.pages
    published = {d.source for d in shown}
    hidden = [d for d in loaded.documents if d.source not in published]
    targets = LinkTargets(known, shown, hidden, page_ids(theme))
    diagnostics += check_links(shown, config, targets, line_of)
    diagnostics += check_images(shown, config, known, line_of)
    warnings = tuple(
        sorted(set(d for d in diagnostics if d.severity == "warning"), key=Diagnostic.sort_key)
    )
    if options.strict and warnings:
        cache.save()
        raise BuildFailed(warnings)

    if write:
        _guard_output(site_dir, out_dir)
        previous = cache.manifests.get(manifest_key, {})
        stats = write_outputs(outputs, out_dir, previous, jobs, progress)
        write_site_files(site_dir, context.site_files)
        cache.manifests[manifest_key] = {o.path: o.key for o in outputs}
        cache.snapshots[manifest_key] = Snapshot(
            inputs,
            _valid_until(loaded.documents, now, options),
            len(site.posts),
            len(site.pages),
            len(outputs),
            warnings,
            {"redirects": tuple(context.redirects)},
        )
        cache.meta[THEME_CHECKED] = theme_key
        cache.mark_dirty()
        cache.save()
    else:
        stats = _check_in_memory(outputs, config, context.redirects)
    return BuildResult(
        config,
        len(site.posts),
        len(site.pages),
        site,
        stats.total,
        stats.rendered,
        stats.unchanged,
        loaded.parsed,
        warnings,
        time.perf_counter() - started,
        out_dir if write else None,
        tuple(context.redirects),
    )


def _line_finder(site_dir: Path) -> Callable[[str, str], int]:
    """(source, text) -> the line of the source where the text first appears, 0 when it
    does not: a warning about a link or an image points at its line. Sources are read only
    when a warning needs them."""
    texts: dict[str, str] = {}

    def line_of(source: str, needle: str) -> int:
        if source not in texts:
            try:
                texts[source] = (site_dir / source).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                texts[source] = ""
        text = texts[source]
        # Markdown escapes '&' and percent-encodes spaces and non-ASCII letters in links.
        for candidate in dict.fromkeys((needle, html.unescape(needle), unquote(needle))):
            at = text.find(candidate)
            if at >= 0:
                return text.count("\n", 0, at) + 1
        return 0

    return line_of


def _check_chosen_templates(
    env: jinja2.Environment,
    theme: Theme,
    documents: Sequence[Post],
    line_of: Callable[[str, str], int],
) -> list[Diagnostic]:
    """A `template:` in front matter that the theme lacks is an error at that line, naming
    the post, rather than a build failing somewhere in rendering."""
    problems = []
    checked: dict[str, ThemeError | None] = {}
    for doc in documents:
        if not doc.template:
            continue
        if doc.template not in checked:
            try:
                check_templates(env, theme, (doc.template,))
                checked[doc.template] = None
            except ThemeError as exc:
                checked[doc.template] = exc
        error = checked[doc.template]
        if error is not None:
            problems.append(
                Diagnostic(
                    "error",
                    f"{error.message} (asked for by 'template: {doc.template}')",
                    SourceLocation(doc.source, line_of(doc.source, "template:")),
                    "add the template to the site's templates/ folder, or fix the name",
                )
            )
    return problems


def _check_in_memory(
    outputs: Sequence[Output], config: Config, redirects: Sequence[RedirectRule]
) -> WriteStats:
    """Render every output without writing it, and check the federation documents."""
    checker = DocumentChecker(config, header_rules(config), redirect_rules(config, redirects))
    problems = []
    for output in outputs:
        try:
            if output.render is None:
                scan_file(output)  # the copy a build would make must hold no key either
                continue
            data = check_bytes(output, output.render())
        except FedipressError as exc:
            problems.append(exc.diagnostic())
            continue
        if config.fediverse is not None:
            checker.visit(output.path, data)
    problems += checker.finish()
    if problems:
        raise BuildFailed(problems)
    return WriteStats(len(outputs), len(outputs), unchanged=False)


def _with_static(
    outputs: list[Output],
    site: Site,
    site_dir: Path,
    files: Sequence[StaticFile],
    diagnostics: list[Diagnostic],
) -> list[Output]:
    """Add theme and site static files and page-bundle resources; generated files win."""
    generated = {o.path for o in outputs}
    result = list(outputs)
    for static in sorted(files, key=lambda f: f.output):
        rel = static.output
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
                digest(["static", str(static.path), static.mtime_ns, static.size, static.mode]),
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
            key = digest(["res", str(path), st.st_mtime_ns, st.st_size, st.st_mode])
            result.append(Output(rel, key, copy_from=path))
    return result


def check(
    site_dir: Path,
    options: BuildOptions = BuildOptions(),
    extensions: Sequence[Extension] | None = None,
) -> BuildResult:
    """Validate config, content and theme, rendering every page in memory; writes nothing."""
    return build(site_dir, options, extensions, write=False)


__all__ = ["BuildOptions", "BuildResult", "ContentError", "build", "check"]
