"""Moving an account of the site to another server (FEDERATION.md §8.3): resolve the target,
check that it names this account in `alsoKnownAs`, and record `moved_to` in fedipress.yaml
for the next build. The `Move` itself goes out with the next publish, once, to every
follower of the account; until then `cancel_move` takes it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fedipress.app.publish import verify_move_target
from fedipress.app.wiring import Federation
from fedipress.config import CONFIG_FILE, Config, load_config, parse_config
from fedipress.documents.urls import Urls
from fedipress.errors import FedipressError
from fedipress.federation.fetch import FetchResult
from fedipress.yamltext import parse_yaml


@dataclass(frozen=True)
class MoveStarted:
    actor: str  # the moving account's actor
    target: str  # the new account's actor id
    followers: int  # who will receive the Move


def split_handle(handle: str) -> tuple[str, str] | None:
    """'@user@host' or 'user@host' -> (user, host); None for anything else."""
    user, at, host = handle.strip().removeprefix("acct:").removeprefix("@").rpartition("@")
    if not at or not user or not host or "@" in user or "/" in host or " " in handle.strip():
        return None
    return user, host


async def resolve_actor(federation: Federation, target: str) -> str:
    """The actor id of `target`: an actor URL as given, or a handle looked up by WebFinger
    through the guarded fetch path (https; http too when private addresses are allowed, for
    local test servers)."""
    if target.startswith(("https://", "http://")):
        return target
    parts = split_handle(target)
    if parts is None:
        raise FedipressError(
            f"'{target}' is neither a handle (@user@server) nor an actor URL",
            hint="for example: fedipress move --to @me@social.example",
        )
    user, host = parts
    schemes = ("https", "http") if federation.allow_private else ("https",)
    failure = ""
    for scheme in schemes:
        resource = quote(f"acct:{user}@{host}", safe=":@")
        result = await federation.fetcher.fetch_jrd(
            f"{scheme}://{host}/.well-known/webfinger?resource={resource}"
        )
        actor = _self_link(result)
        if actor is not None:
            return actor
        failure = result.reason or str(result.failure) or "no self link"
    raise FedipressError(
        f"WebFinger found no account {target}: {failure}",
        hint="check the handle, or give the new account's actor URL instead",
    )


def _self_link(result: FetchResult) -> str | None:
    """The `self` link of a JRD with an ActivityPub type: the one Mastodon follows
    (FEDERATION.md §1.2)."""
    jrd = result.document
    links = jrd.get("links") if isinstance(jrd, dict) else None
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        kind = str(link.get("type", "")).split(";")[0].strip()
        if kind in _AP_TYPES and isinstance(link.get("href"), str):
            return str(link["href"])
    return None


_AP_TYPES = ("application/activity+json", "application/ld+json")


async def start_move(
    federation: Federation, site_dir: Path, target: str, account: str = ""
) -> MoveStarted:
    """Check the target and record `moved_to` for the next build. Refuses a second move of
    an account whose Move was already sent, and a target that does not list the account."""
    urls = Urls(federation.config).for_account(account)
    sent = await _sent_move(federation, account)
    if sent is not None:
        raise FedipressError(
            f"{urls.handle()} already moved to {sent}",
            hint="a Move cannot be called back; move the new account instead",
        )
    actor = await resolve_actor(federation, target)
    if actor == urls.actor():
        raise FedipressError("an account cannot move to itself")
    await verify_move_target(federation.fetcher, actor, urls.actor())
    set_moved_to(site_dir, account, actor)
    followers = federation.store.count_followers("accepted", account)
    return MoveStarted(urls.actor(), actor, followers)


async def cancel_move(federation: Federation, site_dir: Path, account: str = "") -> str:
    """Take back a move whose Move has not been sent: `moved_to` leaves fedipress.yaml.
    Returns the target it had."""
    config = load_config(site_dir)
    fedi = config.fediverse
    current = (fedi.account(account).moved_to if account else fedi.moved_to) if fedi else ""
    sent = await _sent_move(federation, account)
    if sent is not None:
        raise FedipressError(
            f"the Move to {sent} was already sent to the followers; it cannot be undone",
            hint="ask followers to follow the blog again, or move the new account back",
        )
    if not current:
        raise FedipressError("the account has no move to cancel ('moved_to' is not set)")
    set_moved_to(site_dir, account, None)
    return current


async def _sent_move(federation: Federation, account: str) -> str | None:
    key = Urls(federation.config).for_account(account).move_record()
    record = federation.store.get_published(key)
    return record.uid if record is not None and record.state == "live" else None


# --- editing fedipress.yaml ------------------------------------------------------------


def set_moved_to(site_dir: Path, account: str, target: str | None) -> Config:
    """Write (or, with None, remove) `moved_to` of an account in fedipress.yaml, changing
    that one line so comments and layout stay; the result is validated before it is
    written. A flow-style mapping (`{username: blog}`) is refused with a hint."""
    path = site_dir / CONFIG_FILE
    text = path.read_text(encoding="utf-8")
    config = load_config(site_dir)
    fedi = config.fediverse
    if fedi is None:
        raise FedipressError("the site has no 'fediverse' section")
    names = [a.username for a in fedi.accounts]
    section = f"fediverse.accounts.{names.index(account)}" if account else "fediverse"
    edited = _set_key(text, str(path), section, "moved_to", target)
    checked = parse_config(edited, str(path))
    path.write_text(edited, encoding="utf-8")
    return checked


def _set_key(text: str, path: str, section: str, key: str, value: str | None) -> str:
    _, positions = parse_yaml(text, path)
    lines = text.splitlines(keepends=True)
    anchor = positions.keys.get(f"{section}.username")
    existing = positions.keys.get(f"{section}.{key}")
    hint = f"edit '{key}' under '{section}' in {CONFIG_FILE} by hand"
    if anchor is None:
        raise FedipressError(f"'{section}' has no 'username' line to write next to", hint=hint)
    for line, column in filter(None, (anchor, existing)):
        before = lines[line][:column].strip()
        if before not in ("", "-"):
            raise FedipressError(f"'{section}' is written in flow style ({{...}})", hint=hint)
    if existing is not None:
        line = existing[0]
        value_at = positions.values.get(f"{section}.{key}")
        if value_at is not None and value_at[0] != line:
            raise FedipressError(f"'{section}.{key}' spans several lines", hint=hint)
        indent = " " * existing[1]
        if value is None:
            del lines[line]
        else:
            lines[line] = f"{indent}{key}: {json.dumps(value)}\n"
    elif value is not None:
        indent = " " * anchor[1]
        value_at = positions.values.get(f"{section}.username")
        if value_at is not None and value_at[0] != anchor[0]:
            raise FedipressError(f"'{section}.username' spans several lines", hint=hint)
        if not lines[anchor[0]].endswith("\n"):
            lines[anchor[0]] += "\n"
        lines.insert(anchor[0] + 1, f"{indent}{key}: {json.dumps(value)}\n")
    return "".join(lines)
