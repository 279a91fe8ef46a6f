#!/usr/bin/env python3
"""Slow-body benchmark: what `fedipress inbox serve` does with N connections that announce a
body and then send only 5 bytes of it, all at once, on loopback.

Starts `fedipress inbox serve` (SQLite, a throw-away site, default limits) on a free port and
runs two waves of N connections each:

- announcing 1 GB (over the 1 MB limit): refused before reading, 413;
- announcing 1 MB (within the limit): up to 64 are read until the body deadline (408), the
  rest are refused at once (503, Retry-After).

For each wave it prints the answers by status, the time from sending to the connection's
close (median and max per status), whether a normal request (GET /ap/health) was answered
while the wave was open and how fast, and the server's peak memory.

    python bench/slow_bodies.py                 # N = 1,000
    python bench/slow_bodies.py --connections 200 --body-timeout 3
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fedipress.app.keyfiles import generate_keys  # noqa: E402
from fedipress.config import load_config  # noqa: E402

SITE = """title: Slow bodies
base_url: https://blog.example/
fediverse: {username: blog}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_inbox(site: Path, port: int, body_timeout: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "fedipress", "inbox", "serve", str(site), "-q"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--body-timeout", str(body_timeout)],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,  # uvicorn warns once per request over its limit
    )
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("inbox serve did not start")
        try:
            httpx.get(f"http://127.0.0.1:{port}/ap/health", timeout=1, trust_env=False)
            return process
        except httpx.TransportError:
            time.sleep(0.05)


async def slow_body(port: int, length: int) -> tuple[str, float]:
    """(answer, seconds until the server closed the connection). The answer is the status;
    503s are told apart: the inbox's own (with Retry-After) or uvicorn's connection limit."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /ap/inbox HTTP/1.1\r\nHost: blog.example\r\n"
        f"Content-Type: application/activity+json\r\nContent-Length: {length}\r\n\r\n"
    )
    writer.write(head.encode() + b"12345")
    await writer.drain()
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionError:
        pass
    writer.close()
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "no answer"
    if status == "503":
        retry = b"retry-after:" in data.lower()
        status += " (inbox, Retry-After)" if retry else " (uvicorn's connection limit)"
    return status, time.monotonic() - started


async def normal_request(port: int, delay: float) -> tuple[int, float]:
    """GET /ap/health `delay` seconds into the wave: (status, seconds to answer)."""
    await asyncio.sleep(delay)
    started = time.monotonic()
    async with httpx.AsyncClient(trust_env=False) as client:
        try:
            response = await client.get(f"http://127.0.0.1:{port}/ap/health", timeout=30)
        except httpx.HTTPError:
            return 0, time.monotonic() - started
    return response.status_code, time.monotonic() - started


async def wave(port: int, connections: int, length: int) -> None:
    slow = [slow_body(port, length) for _ in range(connections)]
    started = time.monotonic()
    results, health = await asyncio.gather(
        asyncio.gather(*slow), normal_request(port, 0.5), return_exceptions=False
    )
    total = time.monotonic() - started
    closes: dict[str, list[float]] = defaultdict(list)
    for status, seconds in results:
        closes[status].append(seconds)
    print(f"  {connections} connections announcing {length:,} bytes, sending 5:")
    for status in sorted(closes):
        times = closes[status]
        print(
            f"    {status}: {len(times)}, closed after "
            f"median {statistics.median(times):.2f} s, max {max(times):.2f} s"
        )
    print(f"    all closed after {total:.2f} s")
    print(f"    GET /ap/health during the wave: {health[0]} in {health[1] * 1000:.0f} ms")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--body-timeout", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "fedipress.yaml").write_text(SITE)
        generate_keys(site, load_config(site))
        port = free_port()
        process = start_inbox(site, port, args.body_timeout)
        try:
            print(f"inbox serve on 127.0.0.1:{port}, --body-timeout {args.body_timeout:g}")
            for length in (1_000_000_000, 1_000_000):
                asyncio.run(wave(port, args.connections, length))
            print(f"  peak memory of the inbox: {peak_rss_mb(process.pid):.0f} MB")
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
