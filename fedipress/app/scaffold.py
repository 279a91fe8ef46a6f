"""`fedipress new`: the files of a fresh site, and new posts and pages in a site."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fedipress.config import load_config
from fedipress.documents.post import Kind, slugify
from fedipress.errors import FedipressError

GITIGNORE = """\
# Build output and caches
/_site/
/.fedipress/
# Local secrets: never commit private keys or inbox databases
*.key
private.pem
.env
"""

CONFIG = """\
title: {title}
base_url: {base_url}
language: en
description: Notes and essays.
author:
  name: Your Name
  email: ""
  url: ""
timezone: UTC
permalink: /posts/{{slug}}/
posts_per_page: 10
theme: default
# Make the blog a Fediverse account (@blog@your.host); see docs/federation.md.
# fediverse:
#   username: blog
#   display_name: {title}
#   summary: Posts from my blog.
"""

FIRST_POST = """\
---
title: Hello, world
date: {date}
tags: [meta]
---

This is the first post of this blog. Edit it in `content/posts/hello-world.md`.

<!-- more -->

Posts are Markdown files with YAML front matter. Run `fedipress serve` to preview the site
while you write; it rebuilds and reloads the page on every save.
"""

ABOUT = """\
---
title: About
---

Who writes here, and why.
"""


def create_site(path: Path, title: str, base_url: str, force: bool = False) -> list[Path]:
    """Write a new site; refuse a non-empty folder unless force. Returns the files written."""
    if path.exists() and not path.is_dir():
        raise FedipressError(f"'{path}' exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise FedipressError(
            f"folder '{path}' already exists and is not empty",
            hint="choose a new folder, or use --force to write into it",
        )
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    files = {
        "fedipress.yaml": CONFIG.format(title=_quote(title), base_url=base_url),
        ".gitignore": GITIGNORE,
        "content/posts/hello-world.md": FIRST_POST.format(date=now),
        "content/pages/about.md": ABOUT,
        "static/.gitkeep": "",
    }
    written = []
    for rel, text in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


POST = """\
---
title: {title}
date: {date}
tags: []
draft: true
---

Write the post here. The first paragraph is its summary on the home page and in feeds.
Remove `draft: true` when it is ready.
"""

PAGE = """\
---
title: {title}
draft: true
---

Write the page here. Remove `draft: true` when it is ready.
"""


def create_document(
    site_dir: Path, kind: Kind, title: str, now: datetime, bundle: bool = False
) -> Path:
    """Write a new post or page, as `hugo new` does: front matter filled in (the title, for a
    post the date `now` in the site's time zone, `draft: true`), named by the slug of the
    title. Refuses to replace a file. Returns the file written."""
    config = load_config(site_dir)
    slug = slugify(title)
    if not title.strip() or not slug:
        raise FedipressError(
            f"cannot make a file name from the title {title!r}",
            hint="give a title with letters or digits, such as 'My first post'",
        )
    folder = site_dir / "content" / ("posts" if kind == "post" else "pages")
    target = folder / slug / "index.md" if bundle else folder / f"{slug}.md"
    taken = [p for p in (folder / f"{slug}.md", folder / slug / "index.md") if p.exists()]
    if taken:
        raise FedipressError(
            f"'{taken[0]}' already exists",
            hint="choose another title, or edit that file",
        )
    date = now.astimezone(config.tz).replace(microsecond=0).isoformat()
    text = (POST if kind == "post" else PAGE).format(title=_quote(title.strip()), date=date)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("x", encoding="utf-8") as handle:  # never replaces a file
        handle.write(text)
    return target
