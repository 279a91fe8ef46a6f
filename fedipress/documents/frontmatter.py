"""Split a Markdown file into its front matter and body. Pure: no I/O.

Front matter is YAML between `---` lines, or TOML between `+++` lines as Hugo sites write
it; both give the same values and the same `path:line:col` errors."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

from fedipress.errors import ContentError, SourceLocation
from fedipress.yamltext import Positions, YamlSyntaxError, parse_yaml

_YAML_FENCE = "---"
_YAML_CLOSERS = ("---", "...")
_TOML_FENCE = "+++"


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
    opener = lines[0].rstrip() if lines else ""
    if opener not in (_YAML_FENCE, _TOML_FENCE):
        raise ContentError(
            "no front matter found",
            SourceLocation(path, 1, 1),
            "start the file with a '---' line, then 'title:' and 'date:', then another '---'"
            " (or TOML between '+++' lines)",
        )
    closers = _YAML_CLOSERS if opener == _YAML_FENCE else (_TOML_FENCE,)
    for index in range(1, len(lines)):
        if lines[index].rstrip() in closers:
            end = index
            break
    else:
        raise ContentError(
            "front matter is not closed",
            SourceLocation(path, 1, 1),
            f"add a '{opener}' line after the last front matter key",
        )
    source = "\n".join(lines[1:end])
    if opener == _TOML_FENCE:
        meta, positions = _parse_toml(source, path)
    else:
        try:
            meta, positions = parse_yaml(source, path, line_offset=1)
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


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=\s*""")
_TOML_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(?:#.*)?$")


def _parse_toml(source: str, path: str) -> tuple[dict[str, Any], Positions]:
    """TOML front matter and the positions of its keys (top level and `[table]` keys), so
    errors about a value name its line as YAML's do. The front matter starts on line 2."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _TOML_AT.search(message)
        row, column = (int(at.group(1)) + 1, int(at.group(2))) if at else (2, 0)
        raise ContentError(
            f"invalid TOML: {_TOML_AT.sub('', message)}",
            SourceLocation(path, row, column),
            'check the quoting: TOML needs quotes around text, such as title = "Hello"',
        ) from exc
    positions = Positions(path, line_offset=1)
    table = ""
    for number, line in enumerate(source.split("\n")):
        header = _TOML_TABLE.match(line)
        if header:
            table = header.group(1)
            continue
        key = _TOML_KEY.match(line)
        if key:
            name = key.group(1).strip("\"'")
            dotted = f"{table}.{name}" if table else name
            positions.keys.setdefault(dotted, (number, line.index(key.group(1))))
            positions.values.setdefault(dotted, (number, key.end()))
    return data, positions
