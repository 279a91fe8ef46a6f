"""HTTP for `fedipress doctor`: requests as a remote server makes them, through the SSRF guard
(federation/ssrf.py, via `make_client`), with Mastodon's time and size limits. Every answer
is a value, a failure included; nothing here raises for the network."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import httpx

from fedipress.federation.fetch import (
    ACCEPT_ENCODING,
    FetchLimits,
    make_client,
    read_body,
    user_agent_for,
)
from fedipress.federation.ssrf import check_destination

MAX_BODY = 1_000_000  # Mastodon reads no more of a document (request.rb body_with_limit)


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: `status` 0 and `error` when no answer came."""

    url: str
    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""
    error: str = ""
    received_at: datetime | None = None  # this machine's clock when the answer arrived

    @property
    def answered(self) -> bool:
        return self.status != 0

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def content_type(self) -> str:
        return self.header("content-type")

    @property
    def media_type(self) -> str:
        """The type without parameters, lower-cased: 'application/activity+json'."""
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def redirect(self) -> str:
        """Where a 3xx answer points, absolute; '' for any other answer."""
        location = self.header("location")
        if not 300 <= self.status < 400 or not location:
            return ""
        try:
            return urljoin(self.url, location)
        except ValueError:
            return location

    def json(self) -> object | None:
        """The body as JSON, or None when it is not JSON."""
        try:
            value: object = json.loads(self.body)
        except (ValueError, RecursionError):
            return None
        return value

    def json_object(self) -> dict[str, object]:
        """The body as a JSON object; {} when it is anything else."""
        value = self.json()
        return value if isinstance(value, dict) else {}

    def server_time(self) -> datetime | None:
        """The answer's `Date`, or None without a valid one."""
        try:
            when = parsedate_to_datetime(self.header("date"))
        except (TypeError, ValueError, IndexError):
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    def summary(self) -> str:
        """How the answer looks, for a finding: '404 text/html', or why there was none."""
        if not self.answered:
            return self.error
        kind = self.content_type or "no Content-Type"
        where = f" to {self.redirect}" if self.redirect else ""
        return f"{self.status}{where} ({kind})"


class Probe:
    """Makes the doctor's requests. Use `async with`."""

    def __init__(self, site_url: str, allow_private: bool = False, timeout: float = 10.0) -> None:
        limits = FetchLimits(connect=min(5.0, timeout), read=timeout, total=timeout * 3)
        self.allow_private = allow_private
        self.timeout = timeout
        self.client = make_client(allow_private, limits)
        self.user_agent = user_agent_for(site_url) + " doctor"

    async def __aenter__(self) -> Probe:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def get(self, url: str, accept: str, follow: int = 0) -> Answer:
        """GET `url`; with `follow`, up to that many redirects are followed (WebFinger, as
        Mastodon does), each hop checked by the guard again."""
        answer = await self.request("GET", url, {"Accept": accept})
        for _hop in range(follow):
            if not answer.redirect:
                break
            answer = await self.request("GET", answer.redirect, {"Accept": accept})
        return answer

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        refusal = await check_destination(url, self.allow_private)
        if refusal is not None:
            return Answer(url, error=f"refused: {refusal}")
        sent = {"User-Agent": self.user_agent, "Accept-Encoding": ACCEPT_ENCODING}
        sent.update(headers or {})
        try:
            request = self.client.build_request(method, url, headers=sent, content=body)
            response = await self.client.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException:
            return Answer(url, error="no answer in time")
        except httpx.HTTPError as exc:
            return Answer(url, error=f"cannot connect: {exc or type(exc).__name__}")
        received = datetime.now(UTC)
        try:
            data, problem = await read_body(response, MAX_BODY)
        except httpx.HTTPError as exc:
            data, problem = None, f"the body broke off: {exc or type(exc).__name__}"
        finally:
            await response.aclose()
        # Repeated headers joined, as HTTP allows; names lower-cased.
        found = {
            name.lower(): ", ".join(response.headers.get_list(name)) for name in response.headers
        }
        return Answer(url, response.status_code, found, data or b"", problem, received)
