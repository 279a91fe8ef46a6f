"""Split a Markdown file into its YAML front matter and body. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedipress.errors import ContentError, SourceLocation
from fedipress.yamltext import Positions, YamlSyntaxError, parse_yaml

_FENCE = "---"
_CLOSERS = ("---", "...")


@dataclass(frozen=True)
class FrontMatter:
    meta: dict[str, Any]
    body: str
    body_line: int  # 0-based line of the file where the body starts
    positions: Positions


def split_front_matter(text: str, path: str) -> FrontMatter:
    """Return the parsed front matter and the body; raise ContentError with a position."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != _FENCE:
        raise ContentError(
            "no front matter found",
            SourceLocation(path, 1, 1),
            "start the file with a '---' line, then 'title:' and 'date:', then another '---'",
        )
    for index in range(1, len(lines)):
        if lines[index].rstrip() in _CLOSERS:
            end = index
            break
    else:
        raise ContentError(
            "front matter is not closed",
            SourceLocation(path, 1, 1),
            "add a '---' line after the last front matter key",
        )
    yaml_text = "\n".join(lines[1:end])
    try:
        meta, positions = parse_yaml(yaml_text, path, line_offset=1)
    except YamlSyntaxError as exc:
        raise ContentError(str(exc), exc.location, "check the indentation and quoting") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ContentError(
            "front matter must be a mapping of keys to values",
            SourceLocation(path, 2, 1),
            "write one 'key: value' per line, such as 'title: Hello'",
        )
    body = "\n".join(lines[end + 1 :])
    return FrontMatter({str(k): v for k, v in meta.items()}, body, end + 1, positions)
