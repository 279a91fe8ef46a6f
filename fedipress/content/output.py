"""What a build produces: a list of Outputs, each with a key that changes exactly when its
bytes may change. Pure: rendering happens only when a caller invokes `render`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Output:
    """One file of the built site: rendered bytes, or a copy of a source file."""

    path: str  # relative to the output folder, POSIX: 'posts/hello/index.html'
    key: str
    render: Callable[[], bytes] | None = None
    copy_from: Path | None = None


def digest(parts: Iterable[object]) -> str:
    """A short stable hash of the parts (strings as they are, anything else by repr)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, str):
            h.update(b"s" + part.encode())
        else:
            h.update(b"r" + repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


def file_for(path: str) -> str:
    """Map a site URL path to the file that serves it: '/posts/x/' -> 'posts/x/index.html'."""
    path = path.lstrip("/")
    if not path or path.endswith("/"):
        return path + "index.html"
    return path
