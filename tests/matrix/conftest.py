"""One Synapse homeserver for the whole session (it takes a few seconds to start), with a
fresh room per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.matrix.homeserver import Homeserver


@pytest.fixture(scope="session")
def homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    try:
        import synapse  # noqa: F401
    except ImportError:
        pytest.fail(
            "these tests need Synapse: pip install -e '.[matrix-test]' (scripts/test does)",
            pytrace=False,
        )
    server = Homeserver(Path(tmp_path_factory.mktemp("synapse")))
    try:
        yield server
    finally:
        server.close()
