"""The one writer of the output folder.

Nothing in the output folder changes until every file of a build has rendered: a failed
build leaves the old output as it was. A large build is written aside, into a staging
folder next to the output, and swapped in with two renames; files whose key did not change
are hard-linked from the old output, so they keep their bytes, inode and mtime (deploy tools
see them as unchanged), and stale files vanish with the old folder. A small change renders
its files aside and moves each into place atomically. When nothing changed, nothing is
touched.

Every byte written passes one check: no output may hold a PEM private key. A copied file
keeps its source's permissions when they are narrower than the default (a 0600 file stays
0600).
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path

from fedipress.content.output import Output
from fedipress.errors import BuildFailed, Diagnostic, FedipressError, SourceLocation, unreadable

Progress = Callable[[int, int], None]
PARALLEL_THRESHOLD = 200
# A PEM private key's header line, whatever its kind: PKCS#8, RSA, EC, OPENSSH, ENCRYPTED...
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_MARK = b"PRIVATE KEY-----"  # a fast substring test before the regular expression
_CHUNK = 1 << 20
_OVERLAP = 80  # longer than any header
_NO_SENDFILE = (errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP)


@dataclass(frozen=True)
class WriteStats:
    total: int
    rendered: int
    unchanged: bool


def private_key_at(data: bytes | bytearray) -> int:
    """The offset of a PEM private key header in `data`, or -1."""
    if _MARK not in data:
        return -1
    found = _PRIVATE_KEY.search(data)
    return found.start() if found else -1


def private_key_error(output: Output) -> FedipressError:
    where = str(output.copy_from) if output.copy_from else output.path
    return FedipressError(
        f"'{output.path}' would publish a PEM private key; the build refuses to write it",
        SourceLocation(where),
        "remove the key from this file and keep keys out of the site "
        "(.fedipress/private.pem or FEDIPRESS_PRIVATE_KEY); a key that was ever published "
        "must be replaced",
    )


def check_bytes(output: Output, data: bytes) -> bytes:
    """`data`, unless it holds a private key."""
    if private_key_at(data) >= 0:
        raise private_key_error(output)
    return data


def scan_file(output: Output, target: Path | None = None) -> None:
    """Refuse output.copy_from when it holds a private key; else copy it to `target` (when
    given) with its source's permissions, never wider than the default."""
    assert output.copy_from is not None
    try:
        with open(output.copy_from, "rb") as source:
            st = os.fstat(source.fileno())
            if _holds_key(source):
                raise private_key_error(output)
            if target is not None:
                _copy(source, target, st.st_mode & 0o666, st.st_size)
    except OSError as exc:
        raise FedipressError(
            f"cannot copy the file: {exc.strerror}", SourceLocation(str(output.copy_from))
        ) from None


def _holds_key(source: BufferedReader) -> bool:
    """Search the whole file through one reused buffer (no bytes object per chunk); each
    chunk starts with the end of the previous one, so a header split between them is seen."""
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    keep = 0
    while count := source.readinto(view[keep:]):
        filled = keep + count
        if private_key_at(buffer if filled == _CHUNK else buffer[:filled]) >= 0:
            return True
        keep = min(_OVERLAP, filled)
        buffer[:keep] = buffer[filled - keep : filled]
    return False


def _copy(source: BufferedReader, target: Path, mode: int, size: int) -> None:
    # Created with the source's mode, which the umask narrows further: never wider.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as sink:
        offset = 0
        try:
            while offset < size:  # in the kernel, as shutil.copyfile does
                sent = os.sendfile(fd, source.fileno(), offset, size - offset)
                if sent == 0:
                    break
                offset += sent
        except (AttributeError, OSError) as exc:
            if offset or (isinstance(exc, OSError) and exc.errno not in _NO_SENDFILE):
                raise
            source.seek(0)
            shutil.copyfileobj(source, sink)  # a system without sendfile between files


def _write_one(output: Output, staging: Path) -> None:
    target = staging / output.path
    target.parent.mkdir(parents=True, exist_ok=True)
    if output.copy_from is not None:
        scan_file(output, target)
    else:
        assert output.render is not None
        target.write_bytes(check_bytes(output, output.render()))


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
        except OSError as exc:  # a link loop: replacing it would hide the author's link
            raise unreadable(str(target), exc) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)
