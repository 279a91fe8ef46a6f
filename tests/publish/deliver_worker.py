"""`fedipress deliver` with a short lease, for test_crash.py: the site's real inbox service
(open_inbox, the store and key the CLI uses), its Sender draining until nothing is pending.

    python tests/publish/deliver_worker.py SITE LEASE_SECONDS BATCH PER_HOST

The CLI has no lease option (its 120 s lease would make a restart after a crash wait two
minutes); everything else is what `fedipress deliver` runs.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from fedipress.inbox.setup import InboxSetup, open_inbox


async def run(site: Path, lease_seconds: int, batch: int, per_host: int) -> None:
    service = open_inbox(InboxSetup(site))
    service.sender.lease_seconds = lease_seconds
    service.sender.batch = batch
    service.sender.per_host = per_host
    try:
        while True:
            outcomes = await service.sender.drain()
            pending = (await asyncio.to_thread(service.store.queue_stats)).pending
            print(f"sent {len(outcomes)}, pending {pending}", flush=True)
            if pending == 0:
                return
            await asyncio.sleep(0.1)  # rows leased by a dead worker: wait for the lease
    finally:
        await service.aclose()
        service.store.close()


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
