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


def _walk(root: Path, skip: tuple[str, ...] = _SKIP) -> list[tuple[Path, list[str], list[str]]]:
    result = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(skip))
        result.append(
            (Path(dirpath), dirnames, sorted(f for f in filenames if not f.startswith(skip)))
        )
    return result


def find_sources(site_dir: Path) -> list[Found]:
    """content/posts/**/*.md and content/pages/**: a folder with index.md is a page bundle
    whose other files are its resources."""
    found: list[Found] = []
    for kind, folder in (("post", "posts"), ("page", "pages")):
        root = site_dir / "content" / folder
        bundles: list[Path] = []
        for dirpath, _dirs, files in _walk(root):
            if any(dirpath.is_relative_to(b) for b in bundles):
                continue
            if dirpath != root and "index.md" in files:
                bundles.append(dirpath)
                resources = tuple(
                    str(p.relative_to(dirpath).as_posix())
                    for p in sorted(dirpath.rglob("*"))
                    if p.is_file()
                    and p.name != "index.md"
                    and not any(part.startswith(_SKIP) for part in p.relative_to(dirpath).parts)
                )
                path = dirpath / "index.md"
                rel_bundle = dirpath.relative_to(site_dir).as_posix()
                found.append(_found(site_dir, path, kind, rel_bundle, resources))
                continue
            for name in files:
                if name.endswith(".md"):
                    found.append(_found(site_dir, dirpath / name, kind))
    return found


def _found(
    site_dir: Path, path: Path, kind: str, bundle: str = "", resources: tuple[str, ...] = ()
) -> Found:
    st = path.stat()
    source = Source(path.relative_to(site_dir).as_posix(), kind, bundle, resources)  # type: ignore[arg-type]
    return Found(source, st.st_mtime_ns, st.st_size)


def find_static(directories: list[Path]) -> dict[str, StaticFile]:
    """Files to copy as they are; a later directory overrides an earlier one."""
    files: dict[str, StaticFile] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for dirpath, _dirs, names in _walk(directory, _STATIC_SKIP):
            for name in names:
                path = dirpath / name
                st = path.stat()
                rel = path.relative_to(directory).as_posix()
                files[rel] = StaticFile(rel, path, st.st_mtime_ns, st.st_size)
    return files
