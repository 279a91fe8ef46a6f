"""Parse YAML text into plain data plus the source position of every key. Pure: no I/O.

Dates are left as strings (fedipress parses them with the site's time zone), and the
positions let every error name its `path:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from fedipress.errors import SourceLocation

# libyaml's parser when PyYAML was built with it: about ten times faster on front matter.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader without the timestamp resolver: `date: 2024-05-01` stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Positions:
    """Where each key and value sits; keys are dotted paths such as `author.name`."""

    path: str
    line_offset: int = 0
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    values: dict[str, tuple[int, int]] = field(default_factory=dict)

    def key(self, dotted: str) -> SourceLocation:
        return self._at(self.keys.get(dotted))

    def value(self, dotted: str) -> SourceLocation:
        return self._at(self.values.get(dotted) or self.keys.get(dotted))

    def _at(self, pos: tuple[int, int] | None) -> SourceLocation:
        if pos is None:
            return SourceLocation(self.path, self.line_offset + 1 if self.line_offset else 0)
        return SourceLocation(self.path, pos[0] + self.line_offset + 1, pos[1] + 1)


class YamlSyntaxError(ValueError):
    def __init__(self, message: str, location: SourceLocation) -> None:
        super().__init__(message)
        self.location = location


def parse_yaml(text: str, path: str, line_offset: int = 0) -> tuple[Any, Positions]:
    """Parse one YAML document; raise YamlSyntaxError with a position on bad YAML.

    `line_offset` is the 0-based line of the file where `text` starts.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + line_offset + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlSyntaxError(f"invalid YAML: {problem}", SourceLocation(path, line, col)) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(
            f"invalid YAML: {exc}", SourceLocation(path, line_offset + 1)
        ) from exc
    finally:
        loader.dispose()
    positions = Positions(path, line_offset)
    if node is not None:
        _collect(node, "", positions)
    return data, positions


def _collect(node: yaml.Node, prefix: str, positions: Positions) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            dotted = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            positions.keys[dotted] = (key_node.start_mark.line, key_node.start_mark.column)
            positions.values[dotted] = (value_node.start_mark.line, value_node.start_mark.column)
            _collect(value_node, dotted, positions)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            dotted = f"{prefix}.{index}"
            positions.values[dotted] = (item.start_mark.line, item.start_mark.column)
            _collect(item, dotted, positions)
