"""Matrix messages for the blog's posts, as plain values: what a post's announcement says,
its edit and its redaction, and the transaction ids that make each one happen once.

Pure: federation/matrix.py sends these through the client-server API (spec v1.x,
`PUT /rooms/{roomId}/send/m.room.message/{txnId}` and `PUT /rooms/{roomId}/redact/...`).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

from fedipress.documents.media import JSONObject

SUMMARY_CHARS = 300  # of a Note's first paragraph shown as its summary
HTML_FORMAT = "org.matrix.custom.html"
# m.notice: automated messages, which bots never answer (spec: m.notice msgtype).
MSGTYPE = "m.notice"


def matrix_to(identifier: str) -> str:
    """The matrix.to link of a user id, room alias or room id (spec: matrix.to navigation),
    percent-encoded as the spec's examples are."""
    return "https://matrix.to/#/" + quote(identifier, safe="")


def txn_id(destination: str, change_id: str) -> str:
    """The transaction id of one change (an activity id) in one room: the same change always
    gets the same id, so the homeserver drops a repeat after a retry or a crash."""
    digest = hashlib.sha256(f"{destination}\n{change_id}".encode()).hexdigest()
    return f"fedipress.{digest[:40]}"


@dataclass(frozen=True)
class PostText:
    title: str
    summary: str
    url: str


class _Paragraphs(HTMLParser):
    """The text of each top-level paragraph of a post's HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            self._depth += 1
            if self._depth == 1:
                self._text = []
        elif tag == "br" and self._depth:
            self._text.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._depth:
            self._depth -= 1
            if self._depth == 0:
                self.paragraphs.append(" ".join("".join(self._text).split()))

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._text.append(data)


def _shorten(text: str, limit: int = SUMMARY_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[: limit - 1]
    return cut.rstrip(" ,;:.") + "…"


def post_text(document: Mapping[str, Any]) -> PostText:
    """Title, summary and link of a published post object (documents/activitypub.py).

    Both forms, Note and Article, start their content with the title line (an Article also
    has it as `name`), and a Note ends with its link; the first paragraph after the title is
    the summary, unless the post has a content warning (`summary`, in both forms), which then
    takes its place so the room sees no more than the Fediverse does."""
    url = str(document.get("url") or document.get("id") or "")
    content = str(document.get("content") or "")
    parser = _Paragraphs()
    parser.feed(content)
    parser.close()
    paragraphs = [p for p in parser.paragraphs if p]
    name = document.get("name")
    if isinstance(name, str) and name.strip():
        title = " ".join(name.split())
    else:
        title = paragraphs[0] if paragraphs else url
    warning = " ".join(str(document.get("summary") or "").split())
    if warning:
        return PostText(title, f"Content warning: {_shorten(warning)}", url)
    body = [p for p in paragraphs[1:] if p != url and not p.startswith("#")]
    return PostText(title, _shorten(body[0]) if body else "", url)


def message_content(text: PostText) -> JSONObject:
    """An `m.room.message` with the post's title, summary and link, plain and formatted."""
    plain = "\n".join(part for part in (text.title, text.summary, text.url) if part)
    link = html.escape(text.url)
    formatted = f'<p><a href="{link}"><strong>{html.escape(text.title)}</strong></a></p>'
    if text.summary:
        formatted += f"<p>{html.escape(text.summary)}</p>"
    formatted += f'<p><a href="{link}">{link}</a></p>'
    return {"msgtype": MSGTYPE, "body": plain, "format": HTML_FORMAT, "formatted_body": formatted}


def edit_content(new: Mapping[str, Any], event_id: str) -> JSONObject:
    """The edit of `event_id` to `new` (spec: event replacements): `m.new_content` for clients
    that know edits, a `* `-prefixed fallback for those that do not."""
    return {
        "msgtype": new["msgtype"],
        "body": f"* {new['body']}",
        "format": HTML_FORMAT,
        "formatted_body": f"* {new['formatted_body']}",
        "m.new_content": dict(new),
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }
