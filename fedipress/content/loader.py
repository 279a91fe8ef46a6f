"""Find a site's content files, page bundles and static files on disk. Reads the tree, never
the file contents (the build reads those only when its cache misses)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fedipress.content.document import Source

_SKIP = (".", "_", "#")
# Static folders may hold dot-folders such as .well-known; only editor and VCS litter is left out.
_STATIC_SKIP = (".git", ".hg", ".svn", ".DS_Store", "Thumbs.db", ".#")


@dataclass(frozen=True)
class Found:
    source: Source
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class StaticFile:
    output: str  # path in the output folder
    path: Path
    mtime_ns: int
    size: int


def _walk(
    root: Path, skip: tuple[str, ...] = _SKIP
) -> list[tuple[str, list[str], list[os.DirEntry[str]]]]:
    """(folder, sub-folder names, file entries) for every folder under root, sorted; os.scandir
    keeps the stat of each file to one system call."""
    result = []
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        dirs = [e.name for e in entries if e.is_dir() and not e.name.startswith(skip)]
        files = [e for e in entries if e.is_file() and not e.name.startswith(skip)]
        result.append((folder, dirs, files))
        pending.extend(os.path.join(folder, d) for d in reversed(dirs))
    return result


def find_sources(site_dir: Path) -> list[Found]:
    """content/posts/**/*.md and content/pages/**: a folder with index.md is a page bundle
    whose other files are its resources."""
    found: list[Found] = []
    site = str(site_dir)
    for kind, folder in (("post", "posts"), ("page", "pages")):
        root = os.path.join(site, "content", folder)
        bundles: list[str] = []
        for dirpath, _dirs, files in _walk(Path(root)):
            if any(dirpath.startswith(b + os.sep) for b in bundles):
                continue
            names = {e.name: e for e in files}
            if dirpath != root and "index.md" in names:
                bundles.append(dirpath)
                resources = tuple(
                    os.path.relpath(os.path.join(d, e.name), dirpath).replace(os.sep, "/")
                    for d, _sub, entries in _walk(Path(dirpath))
                    for e in entries
                    if not (d == dirpath and e.name == "index.md")
                )
                rel_bundle = os.path.relpath(dirpath, site).replace(os.sep, "/")
                found.append(_found(names["index.md"], site, kind, rel_bundle, resources))
                continue
            for entry in files:
                if entry.name.endswith(".md"):
                    found.append(_found(entry, site, kind))
    return found


def _found(
    entry: os.DirEntry[str], site: str, kind: str, bundle: str = "", resources: tuple[str, ...] = ()
) -> Found:
    st = entry.stat()
    rel = _relative(entry.path, site)
    source = Source(rel, kind, bundle, tuple(sorted(resources)))  # type: ignore[arg-type]
    return Found(source, st.st_mtime_ns, st.st_size)


def _relative(path: str, root: str) -> str:
    """path relative to root, POSIX style (os.path.relpath is slow for thousands of files)."""
    prefix = root.rstrip(os.sep) + os.sep
    rest = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)
    return rest.replace(os.sep, "/")


def find_static(directories: list[Path]) -> dict[str, StaticFile]:
    """Files to copy as they are; a later directory overrides an earlier one."""
    files: dict[str, StaticFile] = {}
    for directory in directories:
        base = str(directory)
        for _folder, _dirs, entries in _walk(directory, _STATIC_SKIP):
            for entry in entries:
                st = entry.stat()
                rel = _relative(entry.path, base)
                files[rel] = StaticFile(rel, Path(entry.path), st.st_mtime_ns, st.st_size)
    return files
