"""Fixtures for tests against real ActivityPub peers (tests/peers/*/)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.fedify_peer import FedifyPeer, PeerNotInstalled, check_installed


@pytest.fixture(scope="module")
def fedify_peer() -> Iterator[FedifyPeer]:
    """A started Fedify peer (Person alice), shared by a module's tests and stopped after
    them: tests pick their own records out of received() and log() by id or URL. Fails,
    never skips, when Node or the peer's npm packages are missing."""
    try:
        check_installed()
    except PeerNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    peer = FedifyPeer().start()
    try:
        yield peer
    finally:
        peer.stop()
