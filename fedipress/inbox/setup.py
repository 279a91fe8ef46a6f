"""Assemble an InboxService from a site folder and the environment (FEDIPRESS_* variables).

`open_inbox(InboxSetup(site))` is the documented entry point for serverless functions; the
federation pieces themselves are opened by `fedipress.app.wiring.open_federation`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fedipress.app.wiring import (
    ALLOW_PRIVATE_ENV,
    DATABASE_ENV,
    SITE_ENV,
    open_federation,
)
from fedipress.errors import ConfigError
from fedipress.inbox.service import InboxOptions, InboxService

DEPLOY_SECRET_ENV = "FEDIPRESS_DEPLOY_SECRET"
SCHEMES_ENV = "FEDIPRESS_SIGNATURE_SCHEMES"
KEY_TIMEOUT_ENV = "FEDIPRESS_KEY_FETCH_TIMEOUT"
BUILD_HOOK_ENV = "FEDIPRESS_BUILD_HOOK_URL"
BUILD_HOOK_DELAY_ENV = "FEDIPRESS_BUILD_HOOK_DELAY"
CRON_SECRET_ENV = "CRON_SECRET"  # Vercel's name; it sends it as `Authorization: Bearer …`
DRAIN_BUDGET_ENV = "FEDIPRESS_DRAIN_BUDGET"
MAX_DRAIN_BUDGET = 840.0  # seconds: AWS Lambda's 15-minute limit, less room to finish

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "BUILD_HOOK_DELAY_ENV",
    "BUILD_HOOK_ENV",
    "CRON_SECRET_ENV",
    "DATABASE_ENV",
    "DEPLOY_SECRET_ENV",
    "DRAIN_BUDGET_ENV",
    "KEY_TIMEOUT_ENV",
    "SCHEMES_ENV",
    "SITE_ENV",
    "InboxSetup",
    "open_inbox",
    "site_dir_from",
]


@dataclass(frozen=True)
class InboxSetup:
    site_dir: Path
    base_url: str | None = None  # the dev server's own address
    allow_private: bool = False
    public_key: Path | None = None  # a dev key pair instead of the site's


def inbox_options(environ: Mapping[str, str]) -> InboxOptions:
    """The inbox's own settings from the environment: the deploy and cron secrets, the
    signature schemes it accepts, how long a signer's key may take and how long a scheduled
    drain may send. Raises ConfigError for a bad value."""
    schemes = frozenset(
        s.strip() for s in environ.get(SCHEMES_ENV, "cavage,rfc9421").split(",") if s.strip()
    )
    unknown = schemes - {"cavage", "rfc9421"}
    if unknown or not schemes:
        raise ConfigError(
            f"{SCHEMES_ENV} lists unknown schemes: {', '.join(sorted(unknown)) or '(none)'}",
            hint="use cavage, rfc9421 or both, comma-separated",
        )
    hook = environ.get(BUILD_HOOK_ENV, "").strip()
    if hook and not hook.startswith(("https://", "http://")):
        raise ConfigError(
            f"{BUILD_HOOK_ENV} must be an http(s) URL",
            hint="the build hook URL your host gives (Netlify: Site settings > Build hooks)",
        )
    return InboxOptions(
        deploy_secret=environ.get(DEPLOY_SECRET_ENV, ""),
        signature_schemes=schemes,
        key_fetch_timeout=_key_fetch_timeout(environ),
        build_hook_url=hook,
        build_hook_delay=_seconds(
            environ, BUILD_HOOK_DELAY_ENV, InboxOptions.build_hook_delay, 0, 3600
        ),
        cron_secret=environ.get(CRON_SECRET_ENV, "").strip(),
        drain_budget=_seconds(
            environ, DRAIN_BUDGET_ENV, InboxOptions.drain_budget, 0, MAX_DRAIN_BUDGET, above=True
        ),
    )


def open_inbox(setup: InboxSetup, environ: Mapping[str, str] | None = None) -> InboxService:
    """The inbox for a site: its config, store (FEDIPRESS_DATABASE_URL or .fedipress/inbox.db)
    and signing key (FEDIPRESS_PRIVATE_KEY or the key file). Raises ConfigError."""
    env = os.environ if environ is None else environ
    options = inbox_options(env)  # before opening anything: a bad setting opens nothing
    federation = open_federation(
        setup.site_dir,
        env,
        base_url=setup.base_url,
        allow_private=setup.allow_private,
        public_key=setup.public_key,
        key_fetch_timeout=options.key_fetch_timeout,
    )
    return InboxService(federation, options)


def _key_fetch_timeout(env: Mapping[str, str]) -> float:
    return _seconds(env, KEY_TIMEOUT_ENV, InboxOptions.key_fetch_timeout, 0, 60, above=True)


def _seconds(
    env: Mapping[str, str],
    name: str,
    default: float,
    low: float,
    high: float,
    above: bool = False,
) -> float:
    """A number of seconds from the environment, from `low` (excluded when `above`) to
    `high`; ConfigError for anything else."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not (low < seconds if above else low <= seconds) or not seconds <= high:
        floor = f"above {low:g}" if above else f"from {low:g}"
        raise ConfigError(
            f"{name} must be a number of seconds {floor}, at most {high:g}, not {raw!r}",
            hint=f"the default is {default:g}",
        )
    return seconds


def site_dir_from(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(SITE_ENV, "."))
