#!/usr/bin/env python3
"""Memory of the sender while a follower's inbox answers a delivery with a huge body.

Starts a loopback server in another process (its memory is not counted) that answers every
POST with 500 and a body of --size bytes (default 1 GB), made chunk by chunk as it is sent,
never held whole. Queues one delivery to it, drains the queue with fedipress's Sender, and
prints the sending process's peak RSS before and after, with what the server managed to
write and what the delivery kept as its error.

    python bench/big_answer.py               # 1 GB
    python bench/big_answer.py --size 401M
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fedipress.federation.delivery import Sender  # noqa: E402
from fedipress.federation.keys import SigningKey, generate_private_key  # noqa: E402
from fedipress.federation.store import open_store  # noqa: E402

CHUNK = b"overflow " * 7282  # about 64 KB


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    if text[-1:].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


async def serve(port: int, size: int) -> None:
    """Answer each request with 500 and `size` bytes; print a JSON line of bytes written."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        written = 0
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(f"HTTP/1.1 500 Oops\r\ncontent-length: {size}\r\n\r\n".encode())
            while written < size:
                part = CHUNK[: size - written]
                writer.write(part)
                await writer.drain()
                written += len(part)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            print(json.dumps({"written": written}), flush=True)
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def deliver_once(inbox: str, tmp: Path) -> tuple[str, str]:
    store = open_store(f"sqlite:///{tmp}/bench.db", tmp)
    key = generate_private_key()
    sender = Sender(
        store,
        SigningKey("https://blog.example/ap/actor#main-key", key),
        "https://blog.example/",
        allow_private=True,
    )
    activity_id = "https://blog.example/ap/posts/x#create"
    store.enqueue(activity_id, [inbox], json.dumps({"id": activity_id}), datetime.now(UTC))
    try:
        (outcome,) = await sender.drain()
    finally:
        await sender.aclose()
    (row,) = store.list_deliveries()
    store.close()
    return f"{outcome.status} {outcome.verdict}", row.last_error or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"))
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.size))
        return
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--size", str(args.size)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    if server.stdout.readline().strip() != "ready":
        raise SystemExit("the server did not start")
    try:
        with tempfile.TemporaryDirectory(prefix="fedipress-big-answer-") as tmp:
            before = peak_rss_mb()
            start = time.perf_counter()
            outcome, error = asyncio.run(deliver_once(f"http://127.0.0.1:{port}/inbox", Path(tmp)))
            elapsed = time.perf_counter() - start
            after = peak_rss_mb()
        written = json.loads(server.stdout.readline())["written"]
    finally:
        server.terminate()
        server.wait(10)
    print(f"answer body: {args.size / 1024**2:.0f} MB offered, {written / 1024**2:.1f} MB written")
    print(f"outcome: {outcome} in {elapsed:.2f} s; stored error: {len(error)} chars")
    print(f"peak RSS of the sender: {before:.0f} MB before, {after:.0f} MB after the delivery")


if __name__ == "__main__":
    main()
