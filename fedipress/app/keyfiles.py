"""Where a site's key pair lives: the public key beside fedipress.yaml (committed, read by
the build), the private key outside the output (`.fedipress/private.pem`, mode 0600,
git-ignored) or in the FEDIPRESS_PRIVATE_KEY environment variable on a host."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from fedipress.config import Config
from fedipress.errors import ConfigError, FedipressError, SourceLocation, unreadable
from fedipress.federation.keys import (
    generate_private_key,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
)

PRIVATE_KEY_FILE = Path(".fedipress") / "private.pem"
PRIVATE_KEY_ENV = "FEDIPRESS_PRIVATE_KEY"
PRIVATE_KEY_FILE_ENV = "FEDIPRESS_PRIVATE_KEY_FILE"


@dataclass(frozen=True)
class KeyPaths:
    public: Path
    private: Path


def key_paths(site_dir: Path, config: Config, environ: Mapping[str, str] | None = None) -> KeyPaths:
    env = os.environ if environ is None else environ
    public_name = config.fediverse.public_key if config.fediverse else "fedipress.pub.pem"
    private = Path(env[PRIVATE_KEY_FILE_ENV]) if env.get(PRIVATE_KEY_FILE_ENV) else None
    return KeyPaths(site_dir / public_name, private or site_dir / PRIVATE_KEY_FILE)


def generate_keys(
    site_dir: Path, config: Config, force: bool = False, bits: int = 2048
) -> tuple[KeyPaths, str]:
    """Write a new key pair; returns the paths and the private PEM (to print once)."""
    paths = key_paths(site_dir, config)
    if not force and paths.public.exists() and not paths.private.exists():
        # A checkout of a site whose private key lives elsewhere (a secret store, another
        # machine), such as the example site: the account's key is already chosen.
        raise FedipressError(
            f"the site already has a public key, '{paths.public}', but its private key is not "
            f"here ('{paths.private}')",
            hint=f"put the private key in '{paths.private}' or set {PRIVATE_KEY_ENV}; "
            "`fedipress serve` needs neither (it makes a local key pair); to give the account "
            "a new key instead, which followers' servers must refetch (FEDERATION.md §4.6), "
            "run `fedipress keys generate --force`",
        )
    existing = [p for p in (paths.public, paths.private) if p.exists()]
    if existing and not force:
        raise FedipressError(
            f"a key already exists at '{existing[0]}'",
            hint="a new key makes followers' servers treat the blog as a new identity "
            "(FEDERATION.md §4.6); use --force only if you mean it",
        )
    private_key_note(site_dir, paths.private)  # refuses a place git would commit
    key = generate_private_key(bits)
    paths.private.parent.mkdir(parents=True, exist_ok=True)
    # Create the private file with 0600 from the start: no moment where others can read it.
    fd = os.open(paths.private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(private_pem(key))
    os.chmod(paths.private, 0o600)
    paths.public.write_text(public_pem(key), encoding="ascii")
    return paths, private_pem(key)


def git_ignored(site_dir: Path, relative: Path) -> bool | None:
    """Whether git ignores `relative` (a path in the site, which need not exist yet); None
    when git is missing or the site is not in a git work tree. A file git already tracks
    counts as not ignored: it would be committed again."""
    git = shutil.which("git")
    if git is None:
        return None
    where = [git, "-C", str(site_dir)]
    inside = subprocess.run(
        [*where, "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    check = subprocess.run(
        [*where, "check-ignore", "-q", "--", str(relative)], capture_output=True, text=True
    )
    if check.returncode not in (0, 1):
        raise FedipressError(
            f"git could not check whether '{relative}' is ignored: {check.stderr.strip()}"
        )
    return check.returncode == 0


def private_key_note(site_dir: Path, private: Path) -> str:
    """How the private key file is kept out of version control, as checked by git; refuses
    a file inside the site that git does not ignore."""
    site = site_dir.resolve()
    path = private.resolve()
    if not path.is_relative_to(site):
        return "outside the site"
    relative = path.relative_to(site)
    ignored = git_ignored(site, relative)
    if ignored is None:
        return "not in a git work tree: never commit it"
    if not ignored:
        raise FedipressError(
            f"'{private}' is inside the site and git does not ignore it: it would be committed",
            hint=f"add '/{relative.as_posix()}' to .gitignore "
            "(and 'git rm --cached' it if it was committed), or set "
            f"{PRIVATE_KEY_FILE_ENV} to a path outside the site",
        )
    return "git-ignored"


def read_public_pem(site_dir: Path, config: Config, public_key: Path | None = None) -> str:
    """The site's public key PEM (or `public_key`'s, a dev key); a clear error naming the
    command when it is missing."""
    paths = key_paths(site_dir, config, {})
    if public_key is not None:
        paths = KeyPaths(public_key, paths.private)
    try:
        text = paths.public.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(
            f"the site has a 'fediverse' section but no public key at '{paths.public}'",
            SourceLocation(config.path),
            f"run: fedipress keys generate {site_dir}",
        ) from None
    except OSError as exc:
        raise unreadable(str(paths.public), exc) from None
    if "PRIVATE KEY" in text:
        raise ConfigError(
            f"'{paths.public}' holds a private key; it would be published",
            SourceLocation(str(paths.public)),
            "keep the private key in .fedipress/private.pem or FEDIPRESS_PRIVATE_KEY",
        )
    load_public_key(text)  # raises KeyFormatError with a hint when unreadable
    return text


def read_private_key(
    site_dir: Path,
    config: Config,
    environ: Mapping[str, str] | None = None,
    public_key: Path | None = None,
) -> RSAPrivateKey:
    """The signing key: FEDIPRESS_PRIVATE_KEY, else the key file; checked against the
    public key so a mismatch fails loudly instead of producing unverifiable signatures."""
    env = os.environ if environ is None else environ
    if public_key is not None:  # a dev key pair: its private half sits beside it
        pem = public_key.with_name(public_key.name.replace(".pub", "")).read_text("ascii")
    elif env.get(PRIVATE_KEY_ENV):
        pem = env[PRIVATE_KEY_ENV].replace("\\n", "\n")
    else:
        path = key_paths(site_dir, config, env).private
        try:
            pem = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise ConfigError(
                f"no private key: set {PRIVATE_KEY_ENV} or create '{path}'",
                hint=f"run: fedipress keys generate {site_dir}",
            ) from None
        except OSError as exc:
            raise unreadable(str(path), exc) from None
    key = load_private_key(pem)
    published = load_public_key(read_public_pem(site_dir, config, public_key))
    if published.public_numbers() != key.public_key().public_numbers():
        raise ConfigError(
            "the private key does not match the site's public key",
            hint="use the key printed by 'fedipress keys generate' for this site",
        )
    return key


DEV_PUBLIC_KEY = Path(".fedipress") / "dev-key.pub.pem"


def dev_key_pair(
    site_dir: Path, config: Config, environ: Mapping[str, str] | None = None
) -> Path | None:
    """For `fedipress serve`: None when the site's own key pair is usable here; else the
    public half of a local key pair (made once) that the preview publishes instead, so a
    fresh clone without the private key still federates on 127.0.0.1."""
    try:
        read_private_key(site_dir, config, environ)
        return None
    except FedipressError:
        pass
    public = site_dir / DEV_PUBLIC_KEY
    private = public.with_name("dev-key.pem")
    if not (public.exists() and private.exists()):
        key = generate_private_key()
        public.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(private_pem(key))
        public.write_text(public_pem(key), encoding="ascii")
    return public
