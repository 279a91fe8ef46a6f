#!/usr/bin/env python3
"""Conversations benchmark: what showing stored likes, boosts and replies costs a build.

Generates the corpus of bench/build.py as a Fediverse site (N posts), and a store beside it
(`.fedipress/inbox.db`, what a self-hosted inbox writes) holding M approved interactions:
replies (some threaded), likes and boosts from a pool of accounts, a tenth of them with an
avatar. It times cold builds in fresh processes without the store and with it, interleaved,
and prints the medians and their ratio; then it stores one new reply and rebuilds, and lists
the files that rebuild wrote.

    python bench/interactions.py                          # N = 10,000, M = 50,000, 3 runs
    python bench/interactions.py --posts 2000 --interactions 10000 --runs 5

Target at N = 10,000 and M = 50,000: the cold build at most 10 % slower (ratio <= 1.10), and
a new reply rewrites that post's page and its documents only.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.build import make_corpus, timed_build
from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from fedipress.federation.store import Interaction, open_store
from fedipress.federation.store.base import ActorProfile

BASE = "https://bench.example"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # 2 KB, the size of a small avatar


def fediverse_site(root: Path, posts: int) -> None:
    make_corpus(root, posts)
    config = root / "fedipress.yaml"
    config.write_text(config.read_text() + "fediverse:\n  username: bench\n")
    generate_keys(root, load_config(root))


def fill_store(root: Path, posts: int, count: int) -> None:
    """`count` approved interactions over the posts: about 30 % replies (a third of them
    answering another reply), 50 % likes, 20 % boosts; 70 % spread evenly, 30 % on a few
    popular posts (a Pareto tail)."""
    rng = random.Random(99)
    actors = [f"https://s{i % 97}.example/users/u{i}" for i in range(max(1, count // 5))]
    store = open_store(None, root)
    try:
        with store.transaction():
            for n, actor in enumerate(actors):
                avatar = PNG + n.to_bytes(4, "big") if n % 10 == 0 else None
                store.put_profile(
                    ActorProfile(
                        actor,
                        f"User {n}",
                        f"u{n}@s{n % 97}.example",
                        actor,
                        T0,
                        f"{actor}.png" if avatar else None,
                        "image/png" if avatar else None,
                        avatar,
                    )
                )
            replies: dict[int, list[str]] = {}
            for n in range(count):
                # Most interactions spread over the catalogue, some crowd on popular posts.
                post = (
                    rng.randrange(posts)
                    if rng.random() < 0.7
                    else min(int(rng.paretovariate(1.0) * 3) - 3, posts - 1)
                )
                object_id = f"{BASE}/ap/posts/post-{post:05d}"
                actor = rng.choice(actors)
                when = T0 + timedelta(minutes=n)
                roll = rng.random()
                if roll < 0.3:
                    earlier = replies.setdefault(post, [])
                    parent = rng.choice(earlier) if earlier and rng.random() < 0.33 else object_id
                    reply_id = f"{actor.rsplit('/users/', 1)[0]}/notes/{n}"
                    store.add_interaction(
                        Interaction(
                            reply_id,
                            "reply",
                            actor,
                            object_id,
                            "approved",
                            f"<p>Reply {n}: a few words about the post.</p>",
                            reply_id,
                            parent,
                            when,
                            depth=0 if parent == object_id else 1,
                        ),
                        when,
                    )
                    if parent == object_id:
                        earlier.append(reply_id)
                else:
                    kind = "like" if roll < 0.8 else "announce"
                    store.add_interaction(
                        Interaction(f"{actor}#{kind}/{n}", kind, actor, object_id, published=when),
                        when,
                    )
    finally:
        store.close()


def files(out: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.stat().st_ino)
        for p in out.rglob("*")
        if p.is_file()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=0, help="0: one process per core")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedipress-bench-") as tmp:
        site = Path(tmp) / "site"
        fediverse_site(site, args.posts)
        store_file = site / ".fedipress" / "inbox.db"
        kept = Path(tmp) / "inbox.db"
        fill_store(site, args.posts, args.interactions)
        shutil.move(store_file, kept)
        walls: dict[str, list[float]] = {"without": [], "with": []}
        for run in range(args.runs):
            # Alternate the order, and flush the disk before each build: half a gigabyte of
            # output written by one build would otherwise be written back during the next.
            for case in ("without", "with") if run % 2 == 0 else ("with", "without"):
                shutil.rmtree(site / "_site", ignore_errors=True)
                shutil.rmtree(site / ".fedipress" / "cache", ignore_errors=True)
                store_file.unlink(missing_ok=True)
                if case == "with":
                    shutil.copy(kept, store_file)
                os.sync()
                walls[case].append(timed_build(site, args.jobs)[0])
        without, with_ = (statistics.median(walls[c]) for c in ("without", "with"))
        print(f"posts {args.posts}, stored interactions {args.interactions}, {args.runs} runs")
        print(f"cold build without interactions: {without:8.2f} s (median)")
        print(f"cold build with interactions:    {with_:8.2f} s (median)")
        print(f"ratio: {with_ / without:.3f} (target <= 1.10)")
        print("runs (s):", {case: [round(w, 2) for w in ws] for case, ws in walls.items()})
        # One new reply to one post, then a rebuild: which files does it write?
        before = files(site / "_site")
        target = f"{BASE}/ap/posts/post-{args.posts // 2:05d}"
        store = open_store(None, site)
        try:
            actor = "https://new.example/users/late"
            store.add_interaction(
                Interaction(
                    f"{actor}/notes/1",
                    "reply",
                    actor,
                    target,
                    "approved",
                    "<p>A late reply.</p>",
                    None,
                    target,
                    T0 + timedelta(days=400),
                ),
                T0,
            )
        finally:
            store.close()
        wall = timed_build(site, args.jobs)[0]
        after = files(site / "_site")
        written = sorted(p for p in after if after[p] != before.get(p))
        print(f"rebuild after one new reply: {wall:.2f} s, {len(written)} files written:")
        for path in written:
            print(f"  {path}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
