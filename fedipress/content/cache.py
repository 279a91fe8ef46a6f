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
import gc
import hashlib
import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedipress.documents.post import Post

CACHE_FORMAT = 5  # 5: posts carry their parse warnings, table of contents, no more-marker


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


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cycle collector while (un)pickling thousands of objects that form no
    cycles; it would otherwise rescan them over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


class HtmlStore:
    """Rendered post HTML by fingerprint, in one SQLite file: thousands of small files cost
    a system call each to create and to clean up, one table does not. Connections are per
    process, since render workers are forked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS html (fp TEXT PRIMARY KEY, body TEXT)")
            self._pid = os.getpid()
        return self._conn

    def get(self, fp: str) -> str | None:
        row = self._db().execute("SELECT body FROM html WHERE fp = ?", (fp,)).fetchone()
        return None if row is None else str(row[0])

    def put_many(self, items: dict[str, str]) -> None:
        if not items:
            return
        db = self._db()
        with db:
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO html (fp, body) VALUES (?, ?)", items.items())

    def delete(self, fps: set[str]) -> None:
        if not fps:
            return
        db = self._db()
        with db:
            db.execute("BEGIN")
            db.executemany("DELETE FROM html WHERE fp = ?", ((fp,) for fp in fps))

    def keep_only(self, live: set[str]) -> None:
        db = self._db()
        with db:
            db.execute("BEGIN")
            db.execute("CREATE TEMP TABLE IF NOT EXISTS live (fp TEXT PRIMARY KEY)")
            db.execute("DELETE FROM live")
            db.executemany("INSERT OR IGNORE INTO live VALUES (?)", ((fp,) for fp in live))
            db.execute("DELETE FROM html WHERE fp NOT IN (SELECT fp FROM live)")

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


class BuildCache:
    """The cache of one site. The snapshots live in a small file of their own, so a build
    whose inputs did not change never loads the (large) index of posts."""

    def __init__(self, directory: Path | None, salt: str) -> None:
        self.directory = directory
        self.salt = salt
        self._entries: dict[str, Entry] | None = None if directory is not None else {}
        self._manifests: dict[str, dict[str, str]] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self._html: dict[str, str] = {}  # this build's fresh HTML, by fingerprint
        self._unsaved: dict[str, str] = {}
        self._dirty = False
        self._stale = False
        self._garbage: set[str] = set()  # fingerprints whose entry was replaced or dropped
        self.html = HtmlStore(directory / "html.sqlite") if directory is not None else None
        self.meta: dict[str, str] = {}  # small facts of the last build (the theme it checked)
        if directory is not None:
            small = self._read("snapshots.pickle")
            self.snapshots = small.get("snapshots", {})
            self.meta = small.get("meta", {})

    def _read(self, name: str) -> dict[str, Any]:
        assert self.directory is not None
        try:
            with _no_gc():  # the collector would walk every new object: twice as slow
                data = pickle.loads((self.directory / name).read_bytes())
        except (OSError, pickle.PickleError, EOFError, AttributeError, TypeError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        if data.get("format") != CACHE_FORMAT or data.get("salt") != self.salt:
            return {}
        return data

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            data = self._read("index.pickle")
            self._entries = data.get("entries", {})
            self._manifests = data.get("manifests", {})
        return self._entries

    @property
    def manifests(self) -> dict[str, dict[str, str]]:
        self.entries  # noqa: B018 - loads the index
        return self._manifests

    def save(self) -> None:
        if self.directory is None or not self._dirty:
            return
        header = {"format": CACHE_FORMAT, "salt": self.salt}
        if self.html is not None:
            self.html.put_many(self._unsaved)
            # Drop HTML no entry refers to, so the cache stays bounded: what this build
            # replaced (a few rows), or a full sweep after bulk removals.
            live = {e.full for e in self.entries.values()}
            if self._stale:
                self.html.keep_only(live)
            else:
                self.html.delete(self._garbage - live)
        self._unsaved.clear()
        self._garbage.clear()
        self._stale = False
        index = {**header, "entries": self.entries, "manifests": self.manifests}
        with _no_gc():
            blob = pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
        _atomic_write(self.directory / "index.pickle", blob)
        _atomic_write(
            self.directory / "snapshots.pickle",
            pickle.dumps(
                {**header, "snapshots": self.snapshots, "meta": self.meta},
                protocol=pickle.HIGHEST_PROTOCOL,
            ),
        )
        self._dirty = False

    def mark_dirty(self) -> None:
        self._dirty = True

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
        self._unsaved[prints[0]] = post.content
        old = self.entries.get(source)
        if old is not None and old.full != prints[0]:
            self._garbage.add(old.full)
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
        old = self.entries.pop(source, None)
        if old is not None:
            self._garbage.add(old.full)
            self._dirty = True

    def content(self, entry: Entry) -> str:
        """A post's HTML; FileNotFoundError when the cache lost it (deleted by hand)."""
        if entry.full in self._html:
            return self._html[entry.full]
        html = self.html.get(entry.full) if self.html is not None else None
        if html is None:
            raise FileNotFoundError(entry.full)
        self._html[entry.full] = html
        return html

    def forget_missing(self, present: set[str]) -> None:
        gone = [source for source in self.entries if source not in present]
        for source in gone:
            self._garbage.add(self.entries.pop(source).full)
            self._dirty = True
        if len(gone) > 100:
            self._stale = True  # many removed: sweep the whole table once
