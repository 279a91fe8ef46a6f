"""Parsing every post and page of a site, from the build cache when a file is unchanged, in
a fork pool when there are many."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path

from fedipress.config import Config
from fedipress.content.cache import BuildCache, Entry, fingerprints, text_hash
from fedipress.content.document import parse_document
from fedipress.content.loader import Found
from fedipress.content.markdown import Renderer, make_markdown
from fedipress.content.writer import private_key_at
from fedipress.documents.post import Post
from fedipress.errors import Diagnostic, FedipressError, SourceLocation, unreadable

PARSE_PARALLEL_THRESHOLD = 200

_PARSE_JOB: tuple[Path, Config] | None = None


@dataclass(frozen=True)
class Parsed:
    """What a parse worker sends back: the post, or an error, or 'unchanged bytes'."""

    source: str
    text_hash: str
    post: Post | None = None
    fingerprints: tuple[str, str] = ("", "")
    problem: Diagnostic | None = None


def _parse_one(
    site_dir: Path, config: Config, md: Renderer, found: Found, known_hash: str
) -> Parsed:
    source = found.source.path
    try:
        data = (site_dir / source).read_bytes()
    except OSError as exc:  # swapped for a link loop, or unreadable, since it was found
        return Parsed(source, "", problem=unreadable(source, exc).diagnostic())
    digest_ = text_hash(data)
    if digest_ == known_hash:  # touched but unchanged: keep the cached post
        return Parsed(source, digest_)
    at = private_key_at(data)
    if at >= 0:  # found here, not in the page: highlighting may split the header
        problem = Diagnostic(
            "error",
            "holds a PEM private key; the build refuses to publish it",
            SourceLocation(source, data.count(b"\n", 0, at) + 1),
            "remove the key; a key that was ever published must be replaced",
        )
        return Parsed(source, digest_, problem=problem)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = Diagnostic(
            "error",
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            SourceLocation(source),
            "save the file as UTF-8",
        )
        return Parsed(source, digest_, problem=problem)
    try:
        post = parse_document(text, found.source, config, md)
    except FedipressError as exc:
        return Parsed(source, digest_, problem=exc.diagnostic())
    return Parsed(source, digest_, post, fingerprints(post))


def _parse_chunk(chunk: list[tuple[Found, str]]) -> list[Parsed]:
    assert _PARSE_JOB is not None
    site_dir, config = _PARSE_JOB
    md = make_markdown(config.markdown_engine)
    return [_parse_one(site_dir, config, md, f, h) for f, h in chunk]


def _parse_all(
    site_dir: Path,
    config: Config,
    todo: list[tuple[Found, str]],
    jobs: int,
) -> list[Parsed]:
    global _PARSE_JOB
    if jobs <= 1 or len(todo) < PARSE_PARALLEL_THRESHOLD:
        md = make_markdown(config.markdown_engine)
        return [_parse_one(site_dir, config, md, f, h) for f, h in todo]
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
    found: list[Found]
    documents: list[Post]
    entries: dict[str, Entry]
    diagnostics: list[Diagnostic]
    parsed: int


def load_documents(
    site_dir: Path, config: Config, cache: BuildCache, jobs: int, found: list[Found]
) -> Loaded:
    """Every post and page, from the cache when the file's bytes are unchanged."""
    entries: dict[str, Entry] = {}
    todo: list[tuple[Found, str]] = []
    for item in found:
        entry = cache.entries.get(item.source.path)
        if entry is not None and entry.post.resources != item.source.resources:
            entry = None
        if entry is not None and (entry.mtime_ns, entry.size) == (item.mtime_ns, item.size):
            entries[item.source.path] = entry
        else:
            todo.append((item, entry.text_hash if entry else ""))
    diagnostics: list[Diagnostic] = []
    by_path = {f.source.path: f for f, _ in todo}
    parsed = 0
    for result in _parse_all(site_dir, config, todo, jobs):
        item = by_path[result.source]
        if result.problem is not None:
            diagnostics.append(result.problem)
            cache.forget(result.source)
        elif result.post is None:
            entries[result.source] = cache.touch(result.source, item.mtime_ns, item.size)
        else:
            parsed += 1
            entries[result.source] = cache.remember(
                result.source,
                item.mtime_ns,
                item.size,
                result.text_hash,
                result.post,
                result.fingerprints,
            )
    cache.forget_missing({f.source.path for f in found})
    documents = [e.post for e in entries.values()]
    return Loaded(found, documents, entries, diagnostics, parsed)
