"""Golden files for a few built pages and the feeds of the example site: any change to the
theme's markup or the feeds shows up as a readable diff (pytest --update-golden)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.app.build import BuildOptions, build

EXAMPLE = Path(__file__).parent.parent.parent / "example-site"
PAGES = [
    "index.html",
    "2024/02/bakers-percentages/index.html",
    "about/index.html",
    "tags/walking/index.html",
    "archive/index.html",
    "feed.xml",
    "feed.json",
    "tags/bread/feed.xml",
    "sitemap.xml",
    "robots.txt",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("golden") / "site"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns("_site", ".fedipress"))
    build(site, BuildOptions(now=lambda: datetime(2025, 6, 1, tzinfo=UTC), jobs=1))
    return site / "_site"


@pytest.mark.parametrize("page", PAGES)
def test_example__golden_pages_and_feeds(built: Path, page: str, golden) -> None:
    golden("pages/" + page.replace("/", "__") + ".txt", (built / page).read_text())
