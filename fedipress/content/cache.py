"""The persistent build cache under `.fedipress/cache/`.

It remembers, per source file, its stat, its text hash and the parsed post (without its
HTML, which lives in one file per content hash), and, per output folder, the key of every
file written there. A rebuild re-parses only files whose bytes changed and re-renders only
outputs whose key changed. Deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fedipress.documents.post import Post

CACHE_FORMAT = 1


@dataclass(frozen=True)
class Entry:
    mtime_ns: int
    size: int
    text_hash: str
    post: Post  # with content = '' ; the HTML is in html/<full>.html
    full: str  # fingerprint of the whole post
    card: str  # fingerprint of what list pages show


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


class BuildCache:
    def __init__(self, directory: Path | None, salt: str) -> None:
        self.directory = directory
        self.salt = salt
        self.entries: dict[str, Entry] = {}
        self.manifests: dict[str, dict[str, str]] = {}
        self._html: dict[str, str] = {}
        if directory is not None:
            self._load()

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

    def save(self) -> None:
        if self.directory is None:
            return
        for fp, html in self._html.items():
            path = self._html_path(fp)
            if not path.exists():
                _atomic_write(path, html.encode())
        self._html.clear()
        blob = pickle.dumps(
            {
                "format": CACHE_FORMAT,
                "salt": self.salt,
                "entries": self.entries,
                "manifests": self.manifests,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        _atomic_write(self._index, blob)
        self._prune_html()

    def _html_path(self, fp: str) -> Path:
        assert self.directory is not None
        return self.directory / "html" / fp[:2] / f"{fp}.html"

    def _prune_html(self) -> None:
        """Drop HTML no entry refers to, so the cache does not grow without bound."""
        assert self.directory is not None
        live = {e.full for e in self.entries.values()}
        root = self.directory / "html"
        if not root.is_dir():
            return
        for sub in root.iterdir():
            for path in sub.iterdir():
                if path.stem not in live:
                    path.unlink(missing_ok=True)

    def remember(self, source: str, mtime_ns: int, size: int, digest: str, post: Post) -> Entry:
        full, card = fingerprints(post)
        self._html[full] = post.content
        entry = Entry(mtime_ns, size, digest, dataclasses.replace(post, content=""), full, card)
        self.entries[source] = entry
        return entry

    def content(self, entry: Entry) -> str:
        if entry.full in self._html:
            return self._html[entry.full]
        if self.directory is None:
            raise KeyError(entry.full)
        html = self._html_path(entry.full).read_text(encoding="utf-8")
        self._html[entry.full] = html
        return html

    def forget_missing(self, present: set[str]) -> None:
        for source in list(self.entries):
            if source not in present:
                del self.entries[source]
