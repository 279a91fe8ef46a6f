#!/usr/bin/env python3
"""Fan-out benchmark: one post delivered to F followers spread over H hosts, on loopback.

Starts bench/fanout_server.py (H addresses in 127.1.0.0/16 on one port, counting POSTs and
verifying a sample of signatures), gives the blog F followers with personal inboxes (no
shared inbox by default: the worst case, one POST per follower), queues one Create and times
fedipress's Sender until every inbox has it, with peak memory. In the same run it times a
baseline: the same number of unsigned POSTs of the same body with a plain httpx loop at the
same concurrency, and prints the ratio of throughputs.

    python bench/fanout.py                     # F = 10,000, H = 1,000
    python bench/fanout.py --followers 2000 --hosts 200 --shared 0.5

Targets on 2 cores: 10,000 followers over 1,000 hosts in <= 10 s, at >= 50 % of the
baseline's throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout_server import host_address  # noqa: E402
from fedipress.config import Config, FediverseConfig  # noqa: E402
from fedipress.documents.urls import Urls  # noqa: E402
from fedipress.federation.delivery import Sender  # noqa: E402
from fedipress.federation.keys import SigningKey, generate_private_key, public_pem  # noqa: E402
from fedipress.federation.store import open_store  # noqa: E402
from fedipress.federation.store.base import Follower  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((host_address(0), 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, hosts: int, port: int, key_file: Path, key_id: str, sample: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench/fanout_server.py"),
                "--hosts",
                str(hosts),
                "--port",
                str(port),
                "--key",
                str(key_file),
                "--key-id",
                key_id,
                "--sample",
                str(sample),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"the inbox server did not start: {line!r}")

    def stats(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(10)


def inboxes(
    followers: int, hosts: int, port: int, shared: float
) -> list[tuple[str, str, str | None]]:
    """(actor, inbox, shared inbox) per follower, spread evenly over the hosts."""
    out = []
    with_shared = int(hosts * shared)
    for n in range(followers):
        host = n % hosts
        base = f"http://{host_address(host)}:{port}"
        out.append(
            (
                f"{base}/users/u{n}",
                f"{base}/users/u{n}/inbox",
                f"{base}/inbox" if host < with_shared else None,
            )
        )
    return out


async def _drain(db_url: str, tmp: str, signer: SigningKey, config: Config, per_host: int) -> None:
    store = open_store(db_url, Path(tmp))
    sender = Sender(
        store, signer, config.base_url, allow_private=True, per_host=per_host, batch=500
    )
    await sender.drain()
    await sender.aclose()
    store.close()


def run_senders(
    db_url: str, tmp: str, signer: SigningKey, config: Config, per_host: int, workers: int
) -> float:
    """`workers` processes drain the one queue together; leases keep them apart."""
    start = time.perf_counter()
    if workers == 1:
        asyncio.run(_drain(db_url, tmp, signer, config, per_host))
        return time.perf_counter() - start
    ctx = multiprocessing.get_context("fork")

    def work() -> None:
        asyncio.run(_drain(db_url, tmp, signer, config, per_host))

    procs = [ctx.Process(target=work) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return time.perf_counter() - start


async def run_baseline(urls: list[str], body: bytes, per_host: int) -> float:
    """Unsigned POSTs with plain httpx at the same concurrency: one small client per host (as
    the Sender keeps), the same per-host limit, and no signing, store or address checks."""
    limits: dict[str, asyncio.Semaphore] = {}
    clients: dict[str, httpx.AsyncClient] = {}
    failures: list[str] = []
    ssl_context = httpx.create_ssl_context()  # one CA bundle load, not one per host

    async def post(url: str) -> None:
        host = url.split("/")[2]
        limit = limits.setdefault(host, asyncio.Semaphore(per_host))
        if host not in clients:
            clients[host] = httpx.AsyncClient(
                verify=ssl_context,
                limits=httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host),
            )
        client = clients[host]
        async with limit:
            try:
                await client.post(
                    url, content=body, headers={"Content-Type": "application/activity+json"}
                )
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    start = time.perf_counter()
    await asyncio.gather(*(post(u) for u in urls))
    elapsed = time.perf_counter() - start
    for client in clients.values():
        await client.aclose()
    if failures:
        print(f"baseline: {len(failures)} failed, e.g. {failures[0]}", file=sys.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument(
        "--shared",
        type=float,
        default=0.0,
        help="fraction of hosts with a shared inbox (0: one POST per follower)",
    )
    parser.add_argument("--per-host", type=int, default=4, help="concurrent requests per host")
    parser.add_argument("--sample", type=int, default=100, help="verify every Nth signature")
    parser.add_argument("--workers", type=int, default=2, help="sender processes")
    args = parser.parse_args()

    config = Config.for_test(
        base_url="https://blog.example/", fediverse=FediverseConfig(username="blog")
    )
    key = generate_private_key()
    signer = SigningKey(Urls(config).key_id(), key)
    with tempfile.TemporaryDirectory(prefix="fedipress-fanout-") as tmp:
        key_file = Path(tmp) / "blog.pub.pem"
        key_file.write_text(public_pem(key))
        port = free_port()
        server = Server(args.hosts, port, key_file, signer.key_id, args.sample)
        try:
            db_url = f"sqlite:///{tmp}/fanout.db"
            store = open_store(db_url, Path(tmp))
            now = datetime.now(UTC)
            with store.transaction():
                for actor, inbox, shared in inboxes(args.followers, args.hosts, port, args.shared):
                    store.upsert_follower(
                        Follower(actor, inbox, shared, None, None, "accepted", now, now)
                    )
            targets = store.follower_inboxes()
            activity = {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": "https://blog.example/ap/posts/bench#create",
                "type": "Create",
                "actor": Urls(config).actor(),
                "object": {
                    "id": "https://blog.example/ap/posts/bench",
                    "type": "Note",
                    "content": "<p>" + "A post of ordinary length. " * 60 + "</p>",
                },
            }
            body = json.dumps(activity)
            store.enqueue(activity["id"], targets, body, now)
            # The baseline runs first, so it pays for the server's cold start, not us.
            baseline = asyncio.run(run_baseline(targets, body.encode(), args.per_host))
            after_baseline = server.stats()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            # The same total concurrency per host as the baseline, shared by the processes.
            per_worker = max(1, args.per_host // args.workers)
            ours = run_senders(db_url, tmp, signer, config, per_worker, args.workers)
            rss = max(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            )
            after_all = server.stats()
            after_ours = {k: after_all[k] - after_baseline[k] for k in after_all}
        finally:
            server.stop()
    delivered = after_ours["posts"]
    stats = store.queue_stats()
    ours_rate = len(targets) / ours
    base_rate = len(targets) / baseline
    print(
        f"followers {args.followers}, hosts {args.hosts}, inboxes {len(targets)}, "
        f"per-host concurrency {args.per_host}"
    )
    print(
        f"fedipress: {delivered} delivered ({stats.done} done, {stats.pending} pending, "
        f"{stats.dead} dead) in {ours:.2f} s = {ours_rate:.0f}/s; peak RSS "
        f"{rss / 1024:.0f} MB (+{(rss - before) / 1024:.0f} MB during the fan-out)"
    )
    print(
        f"signatures: {after_ours['signed']} signed, {after_ours['verified']} of the sampled "
        f"verified, {after_ours['failed']} failed"
    )
    print(
        f"baseline (unsigned httpx): {after_all['posts'] - delivered} in {baseline:.2f} s = "
        f"{base_rate:.0f}/s"
    )
    print(
        f"ratio: {ours_rate / base_rate:.0%} of the baseline throughput "
        f"(target >= 50 %); time {ours:.2f} s (target <= 10 s)"
    )


if __name__ == "__main__":
    main()
