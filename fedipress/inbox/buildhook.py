"""Calling the site's build hook when what the blog shows changed (a reply approved, a like,
a boost, an edit, a deletion), so that a static site rebuilds itself.

Netlify, Cloudflare Pages and Vercel all start a build on a POST to a secret URL, which is
read from FEDIPRESS_BUILD_HOOK_URL and never written into the site. The call is debounced:
in a long-running inbox the first change starts a timer of `delay` seconds and every change
until it fires rides along, so a burst of a hundred likes starts one build. A serverless
inbox has no timer between requests: it calls at once unless it called less than `delay`
seconds ago, and a change that had to wait goes out after the next request past the delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from fedipress.federation.fetch import make_client, user_agent_for

log = logging.getLogger("fedipress.inbox")
DEFAULT_DELAY = 60.0  # seconds
POST_TIMEOUT = 30.0


class BuildHook:
    """Debounced POSTs to one build hook URL; see the module docstring."""

    def __init__(
        self,
        url: str,
        delay: float = DEFAULT_DELAY,
        *,
        site_url: str = "",
        allow_private: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.delay = delay
        self.site_url = site_url
        self.allow_private = allow_private
        self.clock = clock
        self.calls = 0  # POSTs made (answered or not), for logs and tests
        self.failing = False  # the last call failed (told by /ap/health, read by the doctor)
        self._pending = False
        self._last: float | None = None
        self._timer: asyncio.Task[None] | None = None
        self._background = False

    def run_in_background(self) -> None:
        """A long-running server: changes start a timer (call from its event loop)."""
        self._background = True

    def changed(self) -> None:
        """What the blog shows changed: a build is due (now or after the delay)."""
        self._pending = True
        if self._background and (self._timer is None or self._timer.done()):
            self._timer = asyncio.get_running_loop().create_task(self._after_delay())

    async def _after_delay(self) -> None:
        await asyncio.sleep(self.delay)
        await self.call()

    async def flush_due(self) -> None:
        """Serverless, after a request: call if a change waits and the last call is at least
        `delay` seconds old."""
        if self._background or not self._pending:
            return
        if self._last is not None and self.clock() - self._last < self.delay:
            return
        await self.call()

    async def call(self) -> bool:
        """POST to the hook now; True when it answered 2xx. A failure is logged; the change
        stays pending for the next call."""
        self._pending = False
        self._last = self.clock()
        self.calls += 1
        host = urlsplit(self.url).netloc  # the path is the secret: never log it
        try:
            async with make_client(self.allow_private) as client:
                response = await client.post(
                    self.url,
                    content=b"",
                    headers={"User-Agent": user_agent_for(self.site_url)},
                    timeout=POST_TIMEOUT,
                )
        except Exception as exc:  # any network trouble: logged, retried on the next change
            self._pending = self.failing = True
            log.warning("build hook at %s failed: %s", host, type(exc).__name__)
            return False
        if not 200 <= response.status_code < 300:
            self._pending = self.failing = True
            log.warning("build hook at %s answered %s", host, response.status_code)
            return False
        self.failing = False
        log.info("build hook at %s called: the site rebuilds", host)
        return True

    @property
    def status(self) -> str:
        """For /ap/health: 'on', or 'failing' when the last call failed. Never the URL."""
        return "failing" if self.failing else "on"

    async def aclose(self) -> None:
        """Stop the timer; a change still waiting is sent now rather than lost."""
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            if self._pending:
                await self.call()
