"""The persistent build cache under `.fedipress/cache/`.

It remembers, per source file, its stat, its text hash and the parsed post (without its
HTML, which lives in one file per content hash), and, per output folder, the key of every
file written there plus a snapshot of the inputs of the last build. A rebuild re-parses only
files whose bytes changed and re-renders only outputs whose key changed; a build whose inputs
match the snapshot does nothing at all. Deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedipress.documents.post import Post

CACHE_FORMAT = 2


@dataclass(frozen=True)
class Entry:
    mtime_ns: int
    size: int
    text_hash: str
    post: Post  # with content = '' ; the HTML is in html/<full>.html
    full: str  # fingerprint of the whole post
    card: str  # fingerprint of what list pages show


@dataclass
class Snapshot:
    """The inputs of the last build into one output folder, and what it reported."""

    inputs: str
    valid_until: float | None  # a POSIX time when a future post becomes due, or None
    posts: int
    pages: int
    outputs: int
    warnings: tuple[Any, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def fingerprints(post: Post) -> tuple[str, str]:
    """(whole post, list card) hashes: a card ignores the body, so editing the body below
    the summary re-renders only the post's own page and the feeds."""
    whole = hashlib.blake2b(repr(post).encode(), digest_size=16).hexdigest()
    # Cards show the reading time, not the word count: keep small body edits off list pages.
    card_post = dataclasses.replace(post, content="", links=(), word_count=post.reading_minutes)
    card = hashlib.blake2b(repr(card_post).encode(), digest_size=16).hexdigest()
    return whole, card


def text_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _html_path(html_dir: Path, fp: str) -> Path:
    return html_dir / fp[:2] / f"{fp}.html"


def store_html(html_dir: Path, fp: str, content: str) -> None:
    """Write one post's HTML under its fingerprint (safe from several processes at once)."""
    path = _html_path(html_dir, fp)
    if not path.exists():
        _atomic_write(path, content.encode())


class BuildCache:
    def __init__(self, directory: Path | None, salt: str) -> None:
        self.directory = directory
        self.salt = salt
        self.entries: dict[str, Entry] = {}
        self.manifests: dict[str, dict[str, str]] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self._html: dict[str, str] = {}
        self._dirty = False
        if directory is not None:
            self._load()

    @property
    def html_dir(self) -> Path | None:
        return None if self.directory is None else self.directory / "html"

    @property
    def _index(self) -> Path:
        assert self.directory is not None
        return self.directory / "index.pickle"

    def _load(self) -> None:
        try:
            data = pickle.loads(self._index.read_bytes())
        except (OSError, pickle.PickleError, EOFError, AttributeError, TypeError, ValueError):
            return
        if data.get("format") == CACHE_FORMAT and data.get("salt") == self.salt:
            self.entries = data["entries"]
            self.manifests = data["manifests"]
            self.snapshots = data["snapshots"]

    def save(self) -> None:
        if self.directory is None or not self._dirty:
            return
        blob = pickle.dumps(
            {
                "format": CACHE_FORMAT,
                "salt": self.salt,
                "entries": self.entries,
                "manifests": self.manifests,
                "snapshots": self.snapshots,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        _atomic_write(self._index, blob)
        self._prune_html()
        self._dirty = False

    def mark_dirty(self) -> None:
        self._dirty = True

    def _prune_html(self) -> None:
        """Drop HTML no entry refers to, so the cache does not grow without bound."""
        root = self.html_dir
        if root is None or not root.is_dir():
            return
        live = {e.full for e in self.entries.values()}
        for sub in root.iterdir():
            for path in sub.iterdir():
                if path.stem not in live:
                    path.unlink(missing_ok=True)

    def remember(
        self,
        source: str,
        mtime_ns: int,
        size: int,
        digest: str,
        post: Post,
        prints: tuple[str, str],
    ) -> Entry:
        """Keep a freshly parsed post; its HTML stays in memory for this build."""
        self._html[prints[0]] = post.content
        entry = Entry(mtime_ns, size, digest, dataclasses.replace(post, content=""), *prints)
        self.entries[source] = entry
        self._dirty = True
        return entry

    def touch(self, source: str, mtime_ns: int, size: int) -> Entry:
        """A file whose stat changed but whose bytes did not."""
        entry = dataclasses.replace(self.entries[source], mtime_ns=mtime_ns, size=size)
        self.entries[source] = entry
        self._dirty = True
        return entry

    def forget(self, source: str) -> None:
        if self.entries.pop(source, None) is not None:
            self._dirty = True

    def content(self, entry: Entry) -> str:
        if entry.full in self._html:
            return self._html[entry.full]
        if self.html_dir is None:
            raise KeyError(entry.full)
        html = _html_path(self.html_dir, entry.full).read_text(encoding="utf-8")
        self._html[entry.full] = html
        return html

    def forget_missing(self, present: set[str]) -> None:
        for source in list(self.entries):
            if source not in present:
                del self.entries[source]
                self._dirty = True
