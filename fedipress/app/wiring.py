"""Opening a site's federation pieces: the one place that joins config, signing key, store,
fetcher, key cache and sender, from the site folder and the FEDIPRESS_* environment.

The inbox function, `publish`, `deliver`, the follower commands and the preview all open
what they need here, so they sign, fetch and deliver the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from fedipress.app.keyfiles import read_private_key, read_retiring_keys, remove_retiring_key
from fedipress.config import Config, load_config
from fedipress.documents.urls import Urls
from fedipress.errors import ConfigError
from fedipress.federation.delivery import Sender
from fedipress.federation.fetch import Fetcher
from fedipress.federation.keyfetch import CachedKeyFetcher
from fedipress.federation.keys import SigningKey
from fedipress.federation.matrix import CHANNEL as MATRIX_CHANNEL
from fedipress.federation.matrix import MatrixChannel
from fedipress.federation.store import open_store, parse_database_url
from fedipress.federation.store.base import Store
from fedipress.federation.store.url import PREVIEW_SQLITE_PATH, redact_url

DATABASE_ENV = "FEDIPRESS_DATABASE_URL"
PREVIEW_DATABASE = PREVIEW_SQLITE_PATH.as_posix()
SITE_ENV = "FEDIPRESS_SITE_DIR"
ALLOW_PRIVATE_ENV = "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES"
MATRIX_TOKEN_ENV = "FEDIPRESS_MATRIX_TOKEN"  # never in fedipress.yaml: it is a password


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Federation:
    """A site's federation pieces, made once and shared: `fetcher` (signed, guarded GETs),
    `keys` (remote keys, cached in memory and in the store) and `sender` (the delivery
    queue's worker, which drops a follower whose personal inbox answers 410; it sends the
    Matrix room's rows too when it has the room's access token, `matrix_token`).

    `aclose()` closes the network clients, and the store when it was opened here."""

    def __init__(
        self,
        config: Config,
        store: Store,
        signer: SigningKey,
        *,
        allow_private: bool = False,
        now: Callable[[], datetime] = _utcnow,
        owns_store: bool = False,
        key_fetch_timeout: float = 5.0,
        account_keys: Mapping[str, SigningKey] | None = None,
        retiring: Mapping[str, SigningKey] | None = None,
        retire_key: Callable[[str], None] | None = None,
        matrix_token: str = "",
    ) -> None:
        """`signer` is the main account's key; `account_keys` those of the topic accounts
        (by username); `retiring` the old keys of rotations still being announced (by
        account), and `retire_key` deletes one by fingerprint once no delivery needs it."""
        if config.fediverse is None:
            raise ValueError("federation needs a site with a 'fediverse' section")
        self.config = config
        self.store = store
        self.signer = signer
        self.account_keys: dict[str, SigningKey] = {"": signer, **(account_keys or {})}
        self.retiring: dict[str, SigningKey] = dict(retiring or {})
        self._retire_key = retire_key
        self.allow_private = allow_private
        self.now = now
        self.owns_store = owns_store
        self.urls = Urls(config)
        self.fetcher = Fetcher(
            signer=signer, site_url=config.base_url, allow_private=allow_private, now=now
        )
        self.keys = CachedKeyFetcher(self.fetcher, cache=store, timeout=key_fetch_timeout, now=now)
        self.sender = Sender(
            store,
            signer,
            config.base_url,
            allow_private=allow_private,
            now=now,
            on_gone=self._follower_gone,
            keys=self._keyring(),
            on_key_done=self.key_done,
        )
        if config.matrix is not None and config.matrix.announces and matrix_token:
            channel = MatrixChannel(
                store, matrix_token, self.sender.user_agent, allow_private=allow_private
            )
            self.sender.channels = {MATRIX_CHANNEL: channel}

    def _keyring(self) -> dict[str, SigningKey]:
        """Every key a delivery may ask for: by key id (current keys) and by fingerprint."""
        ring = {key.key_id: key for key in self.account_keys.values()}
        for key in [*self.account_keys.values(), *self.retiring.values()]:
            ring[key.fingerprint] = key
        return ring

    def signing_key(self, account: str = "") -> SigningKey:
        """The current key of an account of the site."""
        return self.account_keys[account]

    def key_done(self, key_fingerprint: str) -> None:
        """No pending delivery needs this pinned key any more: a retiring key goes."""
        for account, key in list(self.retiring.items()):
            if key.fingerprint == key_fingerprint:
                del self.retiring[account]
                if self._retire_key is not None:
                    self._retire_key(key_fingerprint)

    def _follower_gone(self, inbox: str) -> None:
        """A 410 from a follower's personal inbox: that account is gone (FEDERATION.md §6.1). Called
        in the sender's store transaction. A shared inbox's 410 speaks for no one account,
        and matches no follower's personal inbox."""
        self.store.remove_followers_with_inbox(inbox)

    async def __aenter__(self) -> Federation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.sender.aclose()
        await self.fetcher.aclose()
        if self.owns_store:
            self.store.close()  # an open PostgreSQL connection would outlive the command


def env_flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes")


def fediverse_config(site_dir: Path, base_url: str | None = None) -> Config:
    """The site's config, which must have a `fediverse` section (ConfigError otherwise)."""
    config = load_config(site_dir)
    if base_url:
        config = config.with_base_url(base_url)
    if config.fediverse is None:
        raise ConfigError(
            "the site has no 'fediverse' section, so it has no inbox",
            hint="add 'fediverse: {username: blog}' to fedipress.yaml",
        )
    return config


def open_site_store(
    site_dir: Path, environ: Mapping[str, str] | None = None, *, preview: bool = False
) -> Store:
    """The store of a site: FEDIPRESS_DATABASE_URL, or SQLite in .fedipress/inbox.db; with
    `preview`, the preview's own store (`PREVIEW_DATABASE`)."""
    return open_store(_store_url(site_dir, environ, preview), site_dir)


def describe_site_store(
    site_dir: Path, environ: Mapping[str, str] | None = None, *, preview: bool = False
) -> str:
    """Which store `open_site_store` opens, for the commands to say so: a file path, or the
    database URL without its password."""
    location = parse_database_url(_store_url(site_dir, environ, preview), site_dir)
    if location.backend == "postgres":
        return f"{redact_url(location.target)} ({DATABASE_ENV})"
    return location.target


def preview_store_exists(site_dir: Path) -> bool:
    return (site_dir / PREVIEW_DATABASE).is_file()


def _store_url(site_dir: Path, environ: Mapping[str, str] | None, preview: bool) -> str | None:
    if preview:
        return f"sqlite:{PREVIEW_DATABASE}"
    env = os.environ if environ is None else environ
    return env.get(DATABASE_ENV) or None


def open_federation(
    site_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    base_url: str | None = None,
    allow_private: bool = False,
    public_key: Path | None = None,
    key_fetch_timeout: float = 5.0,
) -> Federation:
    """Everything federation needs for a site: its config, signing key (FEDIPRESS_PRIVATE_KEY
    or the key file; `public_key` names a dev key pair instead), store and network clients.
    Private addresses are reachable with `allow_private` or FEDIPRESS_ALLOW_PRIVATE_ADDRESSES
    (tests, development); `key_fetch_timeout` bounds the wait for a signer's key. The Matrix
    room's access token comes from FEDIPRESS_MATRIX_TOKEN only. Raises ConfigError."""
    env = os.environ if environ is None else environ
    config = fediverse_config(site_dir, base_url)
    urls = Urls(config)
    keys = {
        account: SigningKey(
            urls.for_account(account).key_id(),
            read_private_key(site_dir, config, env, public_key=public_key, account=account),
        )
        for account in urls.accounts()
    }
    # A dev key pair is never rotated: the site's retiring keys are not for it.
    retiring = (
        {}
        if public_key is not None
        else {
            account: SigningKey(urls.for_account(account).key_id(), key)
            for account, key in read_retiring_keys(site_dir, config, env).items()
        }
    )

    def retire(key_fingerprint: str) -> None:
        remove_retiring_key(site_dir, config, key_fingerprint, env)

    store = open_site_store(site_dir, env)
    allow_private = allow_private or env_flag(env, ALLOW_PRIVATE_ENV)
    return Federation(
        config,
        store,
        keys.pop(""),
        allow_private=allow_private,
        owns_store=True,
        key_fetch_timeout=key_fetch_timeout,
        account_keys=keys,
        retiring=retiring,
        retire_key=retire,
        matrix_token=env.get(MATRIX_TOKEN_ENV, "").strip(),
    )
