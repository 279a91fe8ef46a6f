"""Find a site's content files, page bundles and static files on disk. Reads the tree, never
the file contents (the build reads those only when its cache misses).

Symbolic links are followed only while they stay inside the site folder and out of its
private parts (`.fedipress`, `.git`, `_site`...): a link must never publish a file the author
did not put in the site, such as the private key."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from fedipress.content.document import Source
from fedipress.errors import FedipressError, SourceLocation

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
    mode: int = 0o644  # the copy is never more readable than this


@dataclass(frozen=True)
class Boundary:
    """Where symbolic links met by a walk may lead: inside `real` (a real path), and, for a
    site folder, not into its top-level dot and underscore folders."""

    real: str
    site: bool


def boundary_for(directory: Path, site_dir: Path) -> Boundary:
    """The site folder for a folder of the site; the folder itself for one outside it (a
    bundled theme)."""
    site = os.path.abspath(site_dir)
    inside = os.path.abspath(directory).startswith(site.rstrip(os.sep) + os.sep)
    if inside:
        return Boundary(os.path.realpath(site), True)
    return Boundary(os.path.realpath(directory), False)


def contained(path: str, boundary: Boundary) -> str | None:
    """The real path of `path`, None when it does not exist (a dangling link); a
    FedipressError naming `path` when it loops or leads outside `boundary`."""
    try:
        real = os.path.realpath(path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FedipressError(
                "symbolic link loop", SourceLocation(path), "remove the link or fix its target"
            ) from None
        return None
    if real != boundary.real and not real.startswith(boundary.real.rstrip(os.sep) + os.sep):
        place = "site" if boundary.site else "theme"
        raise FedipressError(
            f"symbolic link to '{real}', outside the {place} folder: the build never follows it",
            SourceLocation(path),
            f"copy the file into the {place} folder instead of linking to it",
        )
    top = real[len(boundary.real) :].lstrip(os.sep).split(os.sep, 1)[0]
    if boundary.site and top.startswith(_SKIP):
        raise FedipressError(
            f"symbolic link into '{top}', which is never published",
            SourceLocation(path),
            "copy what you mean to publish into static/ or content/",
        )
    return real


def _walk(
    root: Path, boundary: Boundary, skip: tuple[str, ...] = _SKIP
) -> list[tuple[str, list[str], list[os.DirEntry[str]]]]:
    """(folder, sub-folder names, file entries) for every folder under root, sorted; os.scandir
    keeps the stat of each file to one system call. Symbolic links are checked against
    `boundary`; a folder link back into the folders being walked is a loop."""
    result: list[tuple[str, list[str], list[os.DirEntry[str]]]] = []
    real_root = contained(str(root), boundary)
    if real_root is None:
        return result
    # Each folder travels with the real paths of itself and its parents.
    pending: list[tuple[str, tuple[str, ...]]] = [(str(root), (real_root,))]
    while pending:
        folder, chain = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        dirs: list[tuple[str, str]] = []
        files = []
        for entry in entries:
            if entry.name.startswith(skip):
                continue
            if entry.is_symlink():
                real = contained(entry.path, boundary)
                if real is None:
                    continue  # a dangling link: nothing to publish
                if os.path.isdir(real):
                    if real in chain:
                        raise FedipressError(
                            "symbolic link loop: it leads back to a folder that contains it",
                            SourceLocation(entry.path),
                            "remove the link or point it elsewhere",
                        )
                    dirs.append((entry.name, real))
                elif os.path.isfile(real):
                    files.append(entry)
            elif entry.is_dir(follow_symlinks=False):
                dirs.append((entry.name, os.path.join(chain[-1], entry.name)))
            elif entry.is_file(follow_symlinks=False):
                files.append(entry)
        result.append((folder, [name for name, _ in dirs], files))
        pending.extend(
            (os.path.join(folder, name), (*chain, real)) for name, real in reversed(dirs)
        )
    return result


def find_sources(site_dir: Path) -> list[Found]:
    """content/posts/**/*.md and content/pages/**: a folder with index.md is a page bundle
    whose other files are its resources."""
    found: list[Found] = []
    site = str(site_dir)
    boundary = boundary_for(site_dir / "content", site_dir)
    for kind, folder in (("post", "posts"), ("page", "pages")):
        root = os.path.join(site, "content", folder)
        bundles: list[str] = []
        for dirpath, _dirs, files in _walk(Path(root), boundary):
            if any(dirpath.startswith(b + os.sep) for b in bundles):
                continue
            names = {e.name: e for e in files}
            if dirpath != root and "index.md" in names:
                bundles.append(dirpath)
                resources = tuple(
                    os.path.relpath(os.path.join(d, e.name), dirpath).replace(os.sep, "/")
                    for d, _sub, entries in _walk(Path(dirpath), boundary)
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


def find_static(directories: list[Path], site_dir: Path) -> dict[str, StaticFile]:
    """Files to copy as they are; a later directory overrides an earlier one."""
    files: dict[str, StaticFile] = {}
    for directory in directories:
        base = str(directory)
        boundary = boundary_for(directory, site_dir)
        for _folder, _dirs, entries in _walk(directory, boundary, _STATIC_SKIP):
            for entry in entries:
                st = entry.stat()
                rel = _relative(entry.path, base)
                files[rel] = StaticFile(
                    rel, Path(entry.path), st.st_mtime_ns, st.st_size, st.st_mode
                )
    return files


def walk_files(directory: Path, site_dir: Path) -> list[Path]:
    """Every file under `directory` (dot files too), in order, links checked as above."""
    boundary = boundary_for(directory, site_dir)
    return [
        Path(entry.path)
        for _folder, _dirs, entries in _walk(directory, boundary, ())
        for entry in entries
    ]
