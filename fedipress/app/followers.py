"""Follower and reply moderation: approving, rejecting and removing followers, approving and
deleting replies. Each change and the reply it owes the follower are one transaction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fedipress.app.wiring import Federation
from fedipress.errors import FedipressError
from fedipress.federation.activities import build_accept, queue_reply
from fedipress.federation.store.base import Store


@dataclass(frozen=True)
class Answer:
    reply: str  # "Accept" or "Reject"
    sent: bool  # delivered now; else it waits in the queue for the next `deliver`


async def answer_follower(
    federation: Federation, actor: str, accept: bool, account: str = ""
) -> Answer:
    """Accept or Reject `actor`'s follow of an account ('' the main one; a Reject also ends
    an accepted follow, FEDERATION.md §3.4): update the store and queue the reply, signed by
    that account, in one transaction, then try to send it now."""
    store, now = federation.store, federation.now()
    try:
        urls = federation.urls.for_account(account)
    except KeyError:
        raise FedipressError(
            f"the site has no account '{account}'",
            hint="topic accounts are listed under 'fediverse.accounts' in fedipress.yaml",
        ) from None
    with store.transaction():
        follower = store.get_follower(actor, account)
        if follower is None:
            raise FedipressError(
                f"no follower or follow request from '{actor}'"
                + (f" for the account '{account}'" if account else ""),
                hint="see: fedipress followers list --pending"
                + (f" --account {account}" if account else ""),
            )
        follow = {
            "id": follower.follow_activity_id or f"{actor}#follow",
            "type": "Follow",
            "actor": actor,
            "object": urls.actor(),
        }
        reply = build_accept(urls.actor(), follow, "Accept" if accept else "Reject")
        if accept:
            store.set_follower_state(actor, "accepted", now, account)
        else:
            store.remove_follower(actor, account)
        queue_reply(store, reply, follower.inbox, now)
    sent = any(o.verdict == "done" for o in await federation.sender.drain())
    return Answer(str(reply["type"]), sent)


def set_reply_state(store: Store, reply_id: str, approve: bool) -> None:
    """Approve a stored reply, or delete it (pending or approved)."""
    with store.transaction():
        item = store.get_interaction(reply_id)
        if item is None or item.kind != "reply":
            raise FedipressError(
                f"no reply with id '{reply_id}'", hint="see: fedipress interactions list --pending"
            )
        if approve:
            store.update_interaction(dataclasses.replace(item, state="approved"))
        else:
            store.remove_interaction(reply_id)
