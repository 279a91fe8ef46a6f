#!/usr/bin/env python3
"""Many inboxes on loopback for bench/fanout.py: one port on H addresses in 127.0.0.0/8
(each address a "host"), a minimal keep-alive HTTP/1.1 server that answers 202, counts every
POST, and verifies the signature of every Nth one with fedipress's own verifier.

Prints `ready` when listening; on stdin `stats` prints a JSON line of counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from fedipress.federation.signatures import RemoteKey, verify_request


def host_address(index: int) -> str:
    return f"127.1.{index // 250}.{index % 250 + 1}"


class Counter:
    def __init__(self, key: RemoteKey | None, sample: int) -> None:
        self.key = key
        self.sample = sample
        self.posts = 0
        self.verified = 0
        self.failed = 0
        self.signed = 0

    async def fetch_key(self, key_id: str, refresh: bool = False) -> RemoteKey | None:
        return self.key


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: Counter, port: int
) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: list[tuple[str, str]] = []
            length = 0
            while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = raw.decode("latin-1").partition(":")
                headers.append((name.strip(), value.strip()))
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            if method == "POST":
                counter.posts += 1
                if any(k.lower() == "signature" for k, _ in headers):
                    counter.signed += 1
                if counter.key is not None and counter.posts % counter.sample == 0:
                    host = next(v for k, v in headers if k.lower() == "host")
                    result = await verify_request(
                        "POST",
                        target,
                        headers,
                        body,
                        public_host=host,
                        public_scheme="http",
                        fetch_key=counter.fetch_key,
                        now=datetime.now(UTC),
                    )
                    if result.ok:
                        counter.verified += 1
                    else:
                        counter.failed += 1
            writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", help="PEM file of the public key to verify samples with")
    parser.add_argument("--key-id", default="")
    parser.add_argument("--sample", type=int, default=100, help="verify every Nth POST")
    args = parser.parse_args()
    key = None
    if args.key:
        with open(args.key) as handle_:
            key = RemoteKey(args.key_id, args.key_id.split("#")[0], handle_.read())
    counter = Counter(key, args.sample)
    servers = [
        await asyncio.start_server(
            lambda r, w: handle(r, w, counter, args.port),
            host_address(i),
            args.port,
            backlog=1024,
        )
        for i in range(args.hosts)
    ]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "quit":
            break
        print(
            json.dumps(
                {
                    "posts": counter.posts,
                    "signed": counter.signed,
                    "verified": counter.verified,
                    "failed": counter.failed,
                }
            ),
            flush=True,
        )
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
