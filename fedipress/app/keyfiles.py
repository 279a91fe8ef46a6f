"""Where a site's key pairs live: the public key beside fedipress.yaml (committed, read by
the build), the private key outside the output (`.fedipress/private.pem`, mode 0600,
git-ignored) or in the FEDIPRESS_PRIVATE_KEY environment variable on a host.

Each topic account (`fediverse.accounts`) has a pair of its own: `fedipress.<name>.pub.pem`,
and `private-<name>.pem` beside the main private key or FEDIPRESS_PRIVATE_KEY_FOR_<NAME>.
`account` is '' for the main account, else the topic account's username.

A key rotation keeps the old private key in `retiring/<username>.pem` beside the private
key, until the Update announcing the new key (signed with the old one) has been delivered."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from fedipress.config import Config, TopicAccount
from fedipress.errors import ConfigError, FedipressError, SourceLocation, unreadable
from fedipress.federation.keys import (
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
)

PRIVATE_KEY_FILE = Path(".fedipress") / "private.pem"
PRIVATE_KEY_ENV = "FEDIPRESS_PRIVATE_KEY"
PRIVATE_KEY_FILE_ENV = "FEDIPRESS_PRIVATE_KEY_FILE"
ACCOUNT_KEY_ENV = "FEDIPRESS_PRIVATE_KEY_FOR_"  # + the topic account's name, upper case
RETIRING_DIR = "retiring"


@dataclass(frozen=True)
class KeyPaths:
    public: Path
    private: Path


def private_key_env(account: str = "") -> str:
    """The environment variable holding an account's private key PEM."""
    if not account:
        return PRIVATE_KEY_ENV
    return ACCOUNT_KEY_ENV + re.sub(r"[^A-Z0-9]", "_", account.upper())


def key_paths(
    site_dir: Path, config: Config, environ: Mapping[str, str] | None = None, account: str = ""
) -> KeyPaths:
    env = os.environ if environ is None else environ
    public_name = config.fediverse.public_key if config.fediverse else "fedipress.pub.pem"
    override = Path(env[PRIVATE_KEY_FILE_ENV]) if env.get(PRIVATE_KEY_FILE_ENV) else None
    private = override or site_dir / PRIVATE_KEY_FILE
    if account:
        topic = _topic(config, account)
        return KeyPaths(
            site_dir / topic.public_key_file, private.with_name(f"private-{account}.pem")
        )
    return KeyPaths(site_dir / public_name, private)


def _topic(config: Config, account: str) -> TopicAccount:
    try:
        return config.fediverse.account(account) if config.fediverse else _no_account(account)
    except KeyError:
        return _no_account(account)


def _no_account(account: str) -> TopicAccount:
    raise FedipressError(
        f"the site has no account '{account}'",
        hint="topic accounts are listed under 'fediverse.accounts' in fedipress.yaml",
    )


def _write_private(path: Path, key: RSAPrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create the private file with 0600 from the start: no moment where others can read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(private_pem(key))
    os.chmod(path, 0o600)


def generate_keys(
    site_dir: Path, config: Config, force: bool = False, bits: int = 2048, account: str = ""
) -> tuple[KeyPaths, str]:
    """Write a new key pair; returns the paths and the private PEM (to print once)."""
    paths = key_paths(site_dir, config, account=account)
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
            hint="to change a key followers' servers know, use 'fedipress keys rotate': "
            "a new key without a signed Update makes them treat the account as a new "
            "identity (FEDERATION.md §4.6); use --force only if you mean it",
        )
    private_key_note(site_dir, paths.private)  # refuses a place git would commit
    key = generate_private_key(bits)
    _write_private(paths.private, key)
    paths.public.write_text(public_pem(key), encoding="ascii")
    return paths, private_pem(key)


def generate_missing_keys(site_dir: Path, config: Config) -> list[KeyPaths]:
    """A key pair for each account that has none yet (the topic accounts added since)."""
    made = []
    for account in _accounts(config):
        paths = key_paths(site_dir, config, {}, account)
        if not paths.public.exists() and not paths.private.exists():
            made.append(generate_keys(site_dir, config, account=account)[0])
    return made


def _accounts(config: Config) -> list[str]:
    return ["", *(a.username for a in config.fediverse.accounts)] if config.fediverse else [""]


def _username(config: Config, account: str) -> str:
    return account or (config.fediverse.username if config.fediverse else "")


# --- key rotation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    paths: KeyPaths
    retiring: Path  # the old private key, kept until the Update announcing the new one is sent
    old_fingerprint: str
    new_fingerprint: str


def retiring_path(
    site_dir: Path, config: Config, account: str = "", environ: Mapping[str, str] | None = None
) -> Path:
    main = key_paths(site_dir, config, environ).private
    return main.parent / RETIRING_DIR / f"{_username(config, account)}.pem"


def rotate_key(
    site_dir: Path,
    config: Config,
    account: str = "",
    environ: Mapping[str, str] | None = None,
    bits: int = 2048,
) -> Rotation:
    """A new key pair for an account. The old private key moves to `retiring/`, so that the
    next publish signs the actor's Update, which carries the new key, with the old one:
    servers that cached the old key accept it (FEDERATION.md §4.6). Refuses while an earlier
    rotation of the account is still being announced, and when the private key comes from
    the environment (this writes files: rotate where the key file is)."""
    env = os.environ if environ is None else environ
    if env.get(private_key_env(account)):
        raise FedipressError(
            f"the private key comes from {private_key_env(account)}: rotate where the key file is",
            hint="run 'fedipress keys rotate' on the machine that has .fedipress/, publish, "
            f"then replace the secret {private_key_env(account)} with the new key",
        )
    retiring = retiring_path(site_dir, config, account, env)
    if retiring.exists():
        raise FedipressError(
            f"the previous key of this account is still being retired ('{retiring}')",
            hint="publish and deliver first: the old key goes once its Update is delivered",
        )
    old = read_private_key(site_dir, config, env, account=account)
    paths = key_paths(site_dir, config, env, account)
    private_key_note(site_dir, retiring)
    new = generate_private_key(bits)
    # Old key first: a crash after any step leaves every key on disk.
    _write_private(retiring, old)
    _write_private(paths.private, new)
    paths.public.write_text(public_pem(new), encoding="ascii")
    return Rotation(paths, retiring, fingerprint(old.public_key()), fingerprint(new.public_key()))


def read_retiring_keys(
    site_dir: Path, config: Config, environ: Mapping[str, str] | None = None
) -> dict[str, RSAPrivateKey]:
    """The old keys of rotations still being announced, by account."""
    found = {}
    for account in _accounts(config):
        path = retiring_path(site_dir, config, account, environ)
        try:
            found[account] = load_private_key(path.read_text(encoding="ascii"))
        except FileNotFoundError:
            continue
    return found


def remove_retiring_key(
    site_dir: Path, config: Config, key_fingerprint: str, environ: Mapping[str, str] | None = None
) -> bool:
    """Delete the retiring key with this fingerprint (its Update was delivered)."""
    for account, key in read_retiring_keys(site_dir, config, environ).items():
        if fingerprint(key.public_key()) == key_fingerprint:
            retiring_path(site_dir, config, account, environ).unlink(missing_ok=True)
            return True
    return False


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


def dev_public_key(public_key: Path, account: str = "") -> Path:
    """The dev public key of an account: the main one's, or its topic sibling beside it."""
    return public_key.with_name(f"dev-key-{account}.pub.pem") if account else public_key


def read_public_pem(
    site_dir: Path, config: Config, public_key: Path | None = None, account: str = ""
) -> str:
    """An account's public key PEM (or a dev key's, with `public_key`); a clear error naming
    the command when it is missing."""
    paths = key_paths(site_dir, config, {}, account)
    if public_key is not None:
        paths = KeyPaths(dev_public_key(public_key, account), paths.private)
    try:
        text = paths.public.read_text(encoding="ascii")
    except FileNotFoundError:
        which = f"account '{account}'" if account else "site"
        raise ConfigError(
            f"the {which} has a 'fediverse' section but no public key at '{paths.public}'",
            SourceLocation(config.path),
            f"run: fedipress keys generate {site_dir}"
            + (f" --account {account}" if account else ""),
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
    account: str = "",
) -> RSAPrivateKey:
    """An account's signing key: its environment variable, else the key file; checked
    against the public key so a mismatch fails loudly instead of producing unverifiable
    signatures."""
    env = os.environ if environ is None else environ
    variable = private_key_env(account)
    if public_key is not None:  # a dev key pair: its private half sits beside it
        dev = dev_public_key(public_key, account)
        pem = dev.with_name(dev.name.replace(".pub", "")).read_text("ascii")
    elif env.get(variable):
        pem = env[variable].replace("\\n", "\n")
    else:
        path = key_paths(site_dir, config, env, account).private
        try:
            pem = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise ConfigError(
                f"no private key: set {variable} or create '{path}'",
                hint=f"run: fedipress keys generate {site_dir}"
                + (f" --account {account}" if account else ""),
            ) from None
        except OSError as exc:
            raise unreadable(str(path), exc) from None
    key = load_private_key(pem)
    published = load_public_key(read_public_pem(site_dir, config, public_key, account))
    if published.public_numbers() != key.public_key().public_numbers():
        raise ConfigError(
            "the private key does not match the "
            + (f"public key of account '{account}'" if account else "site's public key"),
            hint="use the key printed by 'fedipress keys generate' for this site",
        )
    return key


DEV_PUBLIC_KEY = Path(".fedipress") / "dev-key.pub.pem"


def dev_key_pair(
    site_dir: Path, config: Config, environ: Mapping[str, str] | None = None
) -> Path | None:
    """For `fedipress serve`: None when the site's own key pairs are usable here; else the
    public half of a local key pair (made once, with one beside it for each topic account)
    that the preview publishes instead, so a fresh clone without the private keys still
    federates on 127.0.0.1."""
    try:
        for account in _accounts(config):
            read_private_key(site_dir, config, environ, account=account)
        return None
    except FedipressError:
        pass
    public = site_dir / DEV_PUBLIC_KEY
    for account in _accounts(config):
        account_public = dev_public_key(public, account)
        private = account_public.with_name(account_public.name.replace(".pub", ""))
        if not (account_public.exists() and private.exists()):
            key = generate_private_key()
            _write_private(private, key)
            account_public.write_text(public_pem(key), encoding="ascii")
    return public
