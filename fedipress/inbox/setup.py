"""Assemble an InboxService from a site folder and the environment (FEDIPRESS_* variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fedipress.config import load_config
from fedipress.documents.urls import Urls
from fedipress.errors import ConfigError
from fedipress.federation.keys import SigningKey
from fedipress.federation.store import open_store
from fedipress.inbox.service import InboxOptions, InboxService
from fedipress.keyfiles import read_private_key

DATABASE_ENV = "FEDIPRESS_DATABASE_URL"
SITE_ENV = "FEDIPRESS_SITE_DIR"
ALLOW_PRIVATE_ENV = "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES"
DEPLOY_SECRET_ENV = "FEDIPRESS_DEPLOY_SECRET"
SCHEMES_ENV = "FEDIPRESS_SIGNATURE_SCHEMES"
KEY_TIMEOUT_ENV = "FEDIPRESS_KEY_FETCH_TIMEOUT"


@dataclass(frozen=True)
class InboxSetup:
    site_dir: Path
    base_url: str | None = None  # the dev server's own address
    allow_private: bool = False
    public_key: Path | None = None  # a dev key pair instead of the site's


def open_inbox(setup: InboxSetup, environ: Mapping[str, str] | None = None) -> InboxService:
    """The inbox for a site: its config, store (FEDIPRESS_DATABASE_URL or .fedipress/inbox.db)
    and signing key (FEDIPRESS_PRIVATE_KEY or the key file). Raises ConfigError."""
    env = os.environ if environ is None else environ
    config = load_config(setup.site_dir)
    if setup.base_url:
        config = config.with_base_url(setup.base_url)
    if config.fediverse is None:
        raise ConfigError(
            "the site has no 'fediverse' section, so it has no inbox",
            hint="add 'fediverse: {username: blog}' to fedipress.yaml",
        )
    key = read_private_key(setup.site_dir, config, env, public_key=setup.public_key)
    store = open_store(env.get(DATABASE_ENV) or None, setup.site_dir)
    allow_private = setup.allow_private or env.get(ALLOW_PRIVATE_ENV, "") in ("1", "true", "yes")
    schemes = frozenset(
        s.strip() for s in env.get(SCHEMES_ENV, "cavage,rfc9421").split(",") if s.strip()
    )
    unknown = schemes - {"cavage", "rfc9421"}
    if unknown or not schemes:
        raise ConfigError(
            f"{SCHEMES_ENV} lists unknown schemes: {', '.join(sorted(unknown)) or '(none)'}",
            hint="use cavage, rfc9421 or both, comma-separated",
        )
    options = InboxOptions(
        allow_private,
        deploy_secret=env.get(DEPLOY_SECRET_ENV, ""),
        signature_schemes=schemes,
        key_fetch_timeout=_key_fetch_timeout(env),
    )
    return InboxService(config, store, SigningKey(Urls(config).key_id(), key), options)


def _key_fetch_timeout(env: Mapping[str, str]) -> float:
    raw = env.get(KEY_TIMEOUT_ENV, "").strip()
    if not raw:
        return InboxOptions.key_fetch_timeout
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 60:
        raise ConfigError(
            f"{KEY_TIMEOUT_ENV} must be a number of seconds above 0, at most 60, not {raw!r}",
            hint="the default is 5",
        )
    return seconds


def site_dir_from(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(SITE_ENV, "."))
