"""Run `fedipress serve` in a subprocess for end-to-end tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

TIMEOUT = 10.0


class Serve:
    """`fedipress serve SITE --port 0` in a subprocess; its output is collected by threads."""

    def __init__(self, site: Path, *args: str) -> None:
        self.site = site
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fedipress", "serve", ".", "--port", "0", *args],
            cwd=site,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for reader in self._readers:
            reader.start()
        self.url = ""

    def _read(self, name: str, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines[name].append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str, stream: str = "out", count: int = 1) -> re.Match[str]:
        """The `count`th line matching `pattern`, waiting for it if need be."""
        deadline = time.monotonic() + TIMEOUT
        with self._changed:
            while True:
                found = [m for line in self.lines[stream] if (m := re.search(pattern, line))]
                if len(found) >= count:
                    return found[count - 1]
                ended = not any(reader.is_alive() for reader in self._readers)
                if ended or time.monotonic() > deadline:
                    raise AssertionError(f"no line {pattern!r} in {stream}: {self.lines}")
                self._changed.wait(0.2)

    def text(self, stream: str) -> str:
        with self._changed:
            return "\n".join(self.lines[stream])

    def start(self) -> Serve:
        self.url = self.wait_for(r"^serving (http://127\.0\.0\.1:\d+/)$").group(1)
        return self

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(TIMEOUT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return self.proc.returncode
