#!/usr/bin/env python3
"""Build benchmark: cold build, no-change rebuild and one-post-edit rebuild.

Generates a deterministic corpus of N posts (about 800 words of varied Markdown each:
headings, lists, links, emphasis, code blocks in several languages, a table in some, about
50 tags), then times `fedipress build` in a fresh process for each measurement and prints
medians of wall time, CPU time (the build and its worker processes) and peak RSS (the
largest single process).

    python bench/build.py                      # N = 1,000 and 10,000, 3 runs each
    python bench/build.py --sizes 2000 --runs 5

Targets on 2 cores at N = 10,000: cold <= 13 s, no-change <= 0.5 s, one edit <= 1 s,
peak RSS <= 400 MB.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

WORDS = (
    "the of and to in is that for it as with was on be at by this had not are but from or have "
    "an they which one you were all we when there can been has more if no out do so up said what "
    "about into than them only some could new time these two may first then do any like my now "
    "over such our man me even most made after also did many before must through back years where "
    "much your way well down should because each just those people how too little state good very "
    "make world still own see men work long get here between both life being under never day same "
    "another know while last might us great old year off come since against go came right used "
    "take "
    "three walk bread oven river hill rust python kettle garden sourdough trail map compass"
).split()
TAGS = [f"topic-{i:02d}" for i in range(40)] + [
    "python",
    "rust",
    "cooking",
    "walking",
    "bread",
    "travel",
    "notes",
    "linux",
    "web",
    "books",
]
START = datetime(2000, 1, 1, 9, 0, tzinfo=UTC)
CODE = {
    "python": "def fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n"
    "        a, b = b, a + b  # step\n    return a\n\nprint([fib(i) for i in range(10)])\n",
    "rust": "fn main() {\n    let v: Vec<u32> = (1..10).map(|x| x * x).collect();\n"
    '    println!("{:?}", v);\n}\n',
    "javascript": "const total = items\n  .filter((i) => i.price > 10)\n"
    "  .reduce((sum, i) => sum + i.price, 0);\nconsole.log(`total: ${total}`);\n",
    "bash": 'for f in *.md; do\n  echo "processing $f"\n  wc -w "$f"\ndone\n',
    "sql": "SELECT author, count(*) AS posts\nFROM entries\nWHERE published > '2024-01-01'\n"
    "GROUP BY author ORDER BY posts DESC;\n",
    "yaml": "title: Example\ntags: [a, b]\nnested:\n  key: value\n  list:\n    - 1\n    - 2\n",
}


def sentence(rng: random.Random, words: int) -> str:
    picked = [rng.choice(WORDS) for _ in range(words)]
    for i in range(len(picked)):
        roll = rng.random()
        if roll < 0.04:
            picked[i] = f"*{picked[i]}*"
        elif roll < 0.06:
            picked[i] = f"**{picked[i]}**"
        elif roll < 0.08:
            picked[i] = f"[{picked[i]}](https://example.org/{picked[i]})"
        elif roll < 0.09:
            picked[i] = f"`{picked[i]}`"
    text = " ".join(picked)
    return text[0].upper() + text[1:] + "."


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng, rng.randint(8, 18)) for _ in range(rng.randint(3, 5)))


def post_body(rng: random.Random, index: int) -> str:
    parts = [paragraph(rng), "<!-- more -->", paragraph(rng)]
    for section in range(rng.randint(2, 4)):
        parts.append(f"## Section {section + 1}: {rng.choice(WORDS)} and {rng.choice(WORDS)}")
        parts.append(paragraph(rng))
        kind = rng.random()
        if kind < 0.35:
            lang = rng.choice(sorted(CODE))
            parts.append(f"```{lang}\n{CODE[lang]}```")
        elif kind < 0.6:
            parts.append("\n".join(f"- {sentence(rng, rng.randint(4, 9))}" for _ in range(4)))
        elif kind < 0.75:
            rows = "\n".join(
                f"| {rng.choice(WORDS)} | {rng.randint(1, 99)} | {rng.choice(WORDS)} |"
                for _ in range(4)
            )
            parts.append(f"| name | count | note |\n|---|---:|---|\n{rows}")
        else:
            parts.append("> " + sentence(rng, 14))
        parts.append(paragraph(rng))
    while len(" ".join(parts).split()) < 780:
        parts.append(paragraph(rng))
    return "\n\n".join(parts) + "\n"


def make_corpus(root: Path, count: int) -> None:
    rng = random.Random(1234)
    (root / "content/posts").mkdir(parents=True)
    (root / "content/pages").mkdir(parents=True)
    (root / "fedipress.yaml").write_text(
        "title: Bench Blog\nbase_url: https://bench.example/\ntimezone: Europe/Berlin\n"
        "description: A generated corpus.\n"
    )
    (root / "content/pages/about.md").write_text("---\ntitle: About\n---\nA benchmark site.\n")
    for i in range(count):
        tags = rng.sample(TAGS, rng.randint(1, 4))
        when = START + timedelta(hours=20 * i)  # 10,000 posts end in 2022: none in the future
        front = (
            f"---\ntitle: Post number {i} about {rng.choice(WORDS)}\n"
            f"date: {when.isoformat()}\n"
            f"tags: [{', '.join(tags)}]\n---\n\n"
        )
        (root / f"content/posts/post-{i:05d}.md").write_text(front + post_body(rng, i))


def timed_build(site: Path, jobs: int) -> tuple[float, float, float]:
    """One build in a fresh process: (wall s, CPU s, peak RSS MB of the largest process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fedipress", "build", str(site), "-q", "--jobs", str(jobs)],
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024


def measure(count: int, runs: int, jobs: int) -> dict[str, list[tuple[float, float, float]]]:
    results: dict[str, list[tuple[float, float, float]]] = {"cold": [], "no-change": [], "edit": []}
    with tempfile.TemporaryDirectory(prefix="fedipress-bench-") as tmp:
        site = Path(tmp) / "site"
        make_corpus(site, count)
        target = site / f"content/posts/post-{count // 2:05d}.md"
        original = target.read_text()
        for run in range(runs):
            for leftover in (site / "_site", site / ".fedipress"):
                shutil.rmtree(leftover, ignore_errors=True)
            results["cold"].append(timed_build(site, jobs))
            results["no-change"].append(timed_build(site, jobs))
            target.write_text(
                original.replace("<!-- more -->", f"Edit {run}.\n\n<!-- more -->", 1)
                if run % 2 == 0
                else original
            )
            results["edit"].append(timed_build(site, jobs))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=0, help="0: one process per core")
    args = parser.parse_args()
    targets = {"cold": 13.0, "no-change": 0.5, "edit": 1.0}
    print(f"{'N':>7} {'case':<10} {'wall s':>8} {'cpu s':>8} {'rss MB':>8}  target (N=10,000)")
    for count in (int(s) for s in args.sizes.split(",")):
        results = measure(count, args.runs, args.jobs)
        for case, samples in results.items():
            wall = statistics.median(s[0] for s in samples)
            cpu = statistics.median(s[1] for s in samples)
            rss = max(s[2] for s in samples)
            ratio = f"{wall / targets[case]:.2f}x of {targets[case]} s" if count == 10000 else ""
            print(f"{count:>7} {case:<10} {wall:>8.2f} {cpu:>8.2f} {rss:>8.0f}  {ratio}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
