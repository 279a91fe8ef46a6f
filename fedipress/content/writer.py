"""The one writer of the output folder.

Nothing in the output folder changes until every file of a build has rendered: a failed
build leaves the old output as it was. A large build is written aside, into a staging
folder next to the output, and swapped in with two renames; files whose key did not change
are hard-linked from the old output, so they keep their bytes, inode and mtime (deploy tools
see them as unchanged), and stale files vanish with the old folder. A small change renders
its files aside and moves each into place atomically. When nothing changed, nothing is
touched.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fedipress.content.output import Output
from fedipress.errors import BuildFailed, Diagnostic, FedipressError

Progress = Callable[[int, int], None]
PARALLEL_THRESHOLD = 200


@dataclass(frozen=True)
class WriteStats:
    total: int
    rendered: int
    unchanged: bool


def _write_one(output: Output, staging: Path) -> None:
    target = staging / output.path
    target.parent.mkdir(parents=True, exist_ok=True)
    if output.copy_from is not None:
        shutil.copyfile(output.copy_from, target)
    else:
        assert output.render is not None
        target.write_bytes(output.render())


# Set in the parent before forking, so workers inherit the plan without pickling closures.
_JOB: tuple[Sequence[Output], Path] | None = None


def _render_chunk(indices: list[int]) -> list[Diagnostic]:
    assert _JOB is not None
    outputs, staging = _JOB
    problems = []
    for index in indices:
        try:
            _write_one(outputs[index], staging)
        except FedipressError as exc:
            problems.append(exc.diagnostic())
    return problems


def render_all(
    outputs: Sequence[Output],
    indices: list[int],
    staging: Path,
    jobs: int,
    progress: Progress | None = None,
) -> list[Diagnostic]:
    """Render and write the given outputs, across `jobs` forked processes when it pays."""
    global _JOB
    problems: list[Diagnostic] = []
    total = len(indices)
    if (
        jobs <= 1
        or total < PARALLEL_THRESHOLD
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        for done, index in enumerate(indices, 1):
            try:
                _write_one(outputs[index], staging)
            except FedipressError as exc:
                problems.append(exc.diagnostic())
            if progress and done % 100 == 0:
                progress(done, total)
        return problems
    chunk = max(16, total // (jobs * 8))
    chunks = [indices[i : i + chunk] for i in range(0, total, chunk)]
    _JOB = (outputs, staging)
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            done = 0
            for result, size in zip(
                pool.imap(_render_chunk, chunks), map(len, chunks), strict=True
            ):
                problems += result
                done += size
                if progress:
                    progress(done, total)
    finally:
        _JOB = None
    return problems


def write_outputs(
    outputs: Sequence[Output],
    out_dir: Path,
    previous: dict[str, str],
    jobs: int = 1,
    progress: Progress | None = None,
) -> WriteStats:
    """Bring out_dir to exactly `outputs`; `previous` maps path -> key of the last write.

    A few changed files are rendered aside and then moved into place one by one (each move
    is atomic, and nothing moves unless every file rendered); many changes rebuild the whole
    folder aside and swap it in.
    """
    if (
        out_dir.is_dir()
        and len(previous) == len(outputs)
        and all(previous.get(o.path) == o.key for o in outputs)
    ):
        return WriteStats(len(outputs), 0, unchanged=True)
    changed = [i for i, o in enumerate(outputs) if previous.get(o.path) != o.key]
    if out_dir.is_dir() and previous and len(changed) <= max(64, len(outputs) // 4):
        try:
            return _update_in_place(outputs, changed, out_dir, previous, jobs, progress)
        except _Conflict:
            pass  # a file became a folder or the reverse: rebuild the folder aside
    return _rebuild_aside(outputs, out_dir, previous, jobs, progress)


class _Conflict(Exception):
    pass


def _staging(out_dir: Path) -> Path:
    staging = out_dir.with_name(f".{out_dir.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _update_in_place(
    outputs: Sequence[Output],
    changed: list[int],
    out_dir: Path,
    previous: dict[str, str],
    jobs: int,
    progress: Progress | None,
) -> WriteStats:
    staging = _staging(out_dir)
    try:
        problems = render_all(outputs, changed, staging, jobs, progress)
        if problems:
            raise BuildFailed(problems)
        for index in changed:
            rel = outputs[index].path
            target = out_dir / rel
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, target)
            except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
                raise _Conflict(rel) from exc
        current = {o.path for o in outputs}
        for rel in previous.keys() - current:
            stale = out_dir / rel
            stale.unlink(missing_ok=True)
            _prune_empty(stale.parent, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return WriteStats(len(outputs), len(changed), unchanged=False)


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone
            return
        folder = folder.parent


def _rebuild_aside(
    outputs: Sequence[Output],
    out_dir: Path,
    previous: dict[str, str],
    jobs: int,
    progress: Progress | None,
) -> WriteStats:
    staging = _staging(out_dir)
    old = out_dir.with_name(f".{out_dir.name}.old")
    if old.exists():
        shutil.rmtree(old)
    to_render: list[int] = []
    try:
        made: set[Path] = set()
        for index, output in enumerate(outputs):
            if previous.get(output.path) == output.key:
                target = staging / output.path
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                try:
                    os.link(out_dir / output.path, target)
                    continue
                except OSError:
                    pass  # missing, or a file system without hard links: render it
            to_render.append(index)
        problems = render_all(outputs, to_render, staging, jobs, progress)
        if problems:
            raise BuildFailed(problems)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.exists():
        os.rename(out_dir, old)
    os.rename(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return WriteStats(len(outputs), len(to_render), unchanged=False)


def write_site_files(site_dir: Path, files: Mapping[str, bytes]) -> None:
    """Write the files a build keeps beside the site's sources (published-ids.json): each
    replaced atomically, and only when its bytes change, so git sees no needless edits."""
    for rel, data in files.items():
        target = site_dir / rel
        try:
            if target.read_bytes() == data:
                continue
        except FileNotFoundError:
            pass
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)
