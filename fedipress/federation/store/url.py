"""Parse FEDIPRESS_DATABASE_URL into a backend and its target. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from fedipress.errors import StoreError

DEFAULT_SQLITE_PATH = Path(".fedipress") / "inbox.db"
# `fedipress serve` keeps the followers of the preview (an actor at a local address, signed
# with a dev key) apart from the real ones, in this file of the site folder.
PREVIEW_SQLITE_PATH = Path(".fedipress") / "serve-inbox.db"

_URL_FORMS = (
    "Use sqlite:////absolute/path.db, sqlite:///relative.db or sqlite:relative.db "
    "(relative to the site folder), or postgresql://user@host/dbname."
)


@dataclass(frozen=True)
class DatabaseUrl:
    """`target` is a file path (or ':memory:') for sqlite and the URL itself for postgres."""

    backend: Literal["sqlite", "postgres"]
    target: str
    is_default: bool = False


def parse_database_url(url: str | None, site_dir: Path) -> DatabaseUrl:
    """Resolve a database URL; relative SQLite paths are relative to `site_dir`.

    None or "" means the default, `site_dir/.fedipress/inbox.db`. SQLite URLs follow
    SQLAlchemy's slashes: three for a relative path, four for an absolute one.
    """
    if not url:
        return DatabaseUrl("sqlite", str(site_dir / DEFAULT_SQLITE_PATH), is_default=True)
    if url.startswith(("postgresql://", "postgres://")):
        return DatabaseUrl("postgres", url)
    if url.startswith("sqlite:"):
        return DatabaseUrl("sqlite", _sqlite_path(url, site_dir))
    raise StoreError(f"unsupported database URL '{redact_url(url)}'", hint=_URL_FORMS)


def redact_url(url: str) -> str:
    """Hide the password in `scheme://user:secret@host/db`, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def _sqlite_path(url: str, site_dir: Path) -> str:
    rest = url.removeprefix("sqlite:")
    if rest.startswith("///"):
        path = rest[3:]
    elif rest.startswith("//"):
        raise StoreError(
            f"SQLite URL '{url}' names a host; SQLite files are local", hint=_URL_FORMS
        )
    else:
        path = rest
    path = unquote(path)
    if not path:
        raise StoreError(f"SQLite URL '{url}' has no file path", hint=_URL_FORMS)
    if path == ":memory:":
        return path
    return str(site_dir / path)  # an absolute path stays absolute
