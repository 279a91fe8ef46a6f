"""Which topic accounts (`fediverse.accounts`) carry which posts. Pure: no I/O.

A tag matches by its slug, as the tag pages group posts: `Rust`, `rust` and ` rust ` are one
tag. The build (outboxes, follow boxes on tag pages) and nothing else decides membership;
publishing reads it back from each topic account's outbox.
"""

from __future__ import annotations

from collections.abc import Iterable

from fedipress.config import Config, TopicAccount
from fedipress.documents.post import Post, Tag, slugify


def topic_slugs(account: TopicAccount) -> frozenset[str]:
    return frozenset(slugify(tag) for tag in account.tags)


def matches(account: TopicAccount, tags: Iterable[Tag]) -> bool:
    """Whether a post with these tags belongs to the account."""
    wanted = topic_slugs(account)
    return any(tag.slug in wanted for tag in tags)


def accounts_for_post(config: Config, post: Post) -> list[TopicAccount]:
    """The topic accounts that announce `post`, in the order of the config."""
    fedi = config.fediverse
    return [a for a in fedi.accounts if matches(a, post.tags)] if fedi else []


def accounts_for_tag(config: Config, tag: Tag) -> list[TopicAccount]:
    """The topic accounts that carry the posts of a tag page."""
    fedi = config.fediverse
    return [a for a in fedi.accounts if tag.slug in topic_slugs(a)] if fedi else []


def posts_of(account: TopicAccount, posts: Iterable[Post]) -> list[Post]:
    """The posts a topic account announces, in the order given (newest first on a site)."""
    return [post for post in posts if matches(account, post.tags)]
