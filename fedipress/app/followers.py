"""Follower and reply moderation: approving, rejecting and removing followers; approving,
hiding and deleting replies. Each change and the reply it owes the follower are one
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fedipress.app.wiring import Federation
from fedipress.errors import FedipressError
from fedipress.federation.activities import build_accept, queue_reply
from fedipress.federation.store.base import Interaction, Store


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


Moderation = Literal["approve", "hide", "delete"]


def moderate(
    store: Store, action: Moderation, target: str | None = None, actor: str | None = None
) -> list[Interaction]:
    """Approve, hide or delete one reply (by id or web address) or everything of one actor
    (`actor`: its replies for approve and hide, its likes and boosts too for delete). Returns
    what was changed; FedipressError when nothing matches or a reply is not public (it is
    never shown, so it cannot be approved)."""
    with store.transaction():
        if actor is not None:
            found = store.list_interactions(actor_id=actor, limit=1_000_000)
            if action != "delete":
                found = [i for i in found if i.kind == "reply"]
            if not found:
                raise FedipressError(
                    f"nothing stored from '{actor}'", hint="see: fedipress interactions list"
                )
        else:
            item = store.find_interaction(target or "")
            if item is None or item.kind != "reply":
                raise FedipressError(
                    f"no reply with id or address '{target}'",
                    hint="see: fedipress interactions list --pending",
                )
            found = [item]
        changed = []
        for item in found:
            if action == "delete":
                store.remove_interaction(item.id)
            elif action == "approve" and not item.public:
                if actor is not None:
                    continue  # never shown: leave it
                raise FedipressError(
                    f"the reply '{item.id}' is not public (followers-only or direct), so the "
                    "blog never shows it",
                    hint="delete it, or leave it: it stays private",
                )
            else:
                store.set_interaction_state(
                    item.id, "approved" if action == "approve" else "hidden"
                )
            changed.append(item)
        return changed
