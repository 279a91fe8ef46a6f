"""RFC 8941 Structured Field dictionaries: the syntax of Signature-Input, Signature and
Content-Digest (RFC 9421, RFC 9530). Parse and serialise only what those headers use.

Pure: str in, values out; raises StructuredFieldError on malformed input.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass, field
from decimal import Decimal


class StructuredFieldError(ValueError):
    """The header value does not follow RFC 8941."""


class Token(str):
    """An sf-token (unquoted), kept apart from sf-string so it serialises back unquoted."""


BareItem = int | Decimal | str | Token | bytes | bool
Params = dict[str, BareItem]


@dataclass(frozen=True)
class Item:
    value: BareItem
    params: Params = field(default_factory=dict)


@dataclass(frozen=True)
class InnerList:
    items: tuple[Item, ...]
    params: Params = field(default_factory=dict)


Member = Item | InnerList

_KEY_START = string.ascii_lowercase + "*"
_KEY_CHARS = _KEY_START + string.digits + "_-."
_TOKEN_START = string.ascii_letters + "*"
_TOKEN_CHARS = _TOKEN_START + string.digits + "!#$%&'+-.^_`|~:/"
_NUMBER = re.compile(r"-?\d{1,15}(\.\d{1,3})?")
_BASE64 = frozenset(string.ascii_letters + string.digits + "+/=")


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an sf-dictionary (RFC 8941 §4.2.2); a repeated key keeps its last value."""
    parser = _Parser(text)
    result: dict[str, Member] = {}
    parser.skip(" ")
    while not parser.at_end():
        key = parser.key()
        if parser.peek() == "=":
            parser.advance()
            result[key] = parser.item_or_inner_list()
        else:
            result[key] = Item(True, parser.params())
        parser.skip(" \t")
        if parser.at_end():
            break
        parser.expect(",")
        parser.skip(" \t")
        if parser.at_end():
            raise StructuredFieldError("trailing comma in dictionary")
    return result


def serialize_item(item: Item) -> str:
    return _bare(item.value) + serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    return (
        "("
        + " ".join(serialize_item(i) for i in inner.items)
        + ")"
        + serialize_params(inner.params)
    )


def serialize_params(params: Params) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_bare(v)}" for k, v in params.items())


def _bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.001")).normalize())
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        return str(value)
    if any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise StructuredFieldError(f"cannot serialise non-ASCII string {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def skip(self, chars: str) -> None:
        while not self.at_end() and self.text[self.pos] in chars:
            self.pos += 1

    def expect(self, char: str) -> None:
        if self.advance() != char:
            raise StructuredFieldError(f"expected {char!r} at position {self.pos - 1}")

    def key(self) -> str:
        if self.peek() == "" or self.peek() not in _KEY_START:
            raise StructuredFieldError(f"expected a key at position {self.pos}")
        start = self.pos
        while not self.at_end() and self.text[self.pos] in _KEY_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.advance()
            self.skip(" ")
            name = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.advance()
                value = self.bare_item()
            params[name] = value
        return params

    def item_or_inner_list(self) -> Member:
        if self.peek() != "(":
            return Item(self.bare_item(), self.params())
        self.advance()
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.advance()
                return InnerList(tuple(items), self.params())
            items.append(Item(self.bare_item(), self.params()))
            if self.peek() not in (" ", ")"):
                raise StructuredFieldError(f"expected ' ' or ')' at position {self.pos}")

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or char.isdigit():
            return self.number()
        if char == '"':
            return self.string()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            self.advance()
            flag = self.advance()
            if flag not in ("0", "1"):
                raise StructuredFieldError(f"bad boolean at position {self.pos - 1}")
            return flag == "1"
        if char and char in _TOKEN_START:
            start = self.pos
            while not self.at_end() and self.text[self.pos] in _TOKEN_CHARS:
                self.pos += 1
            return Token(self.text[start : self.pos])
        raise StructuredFieldError(f"unexpected {char or 'end'!r} at position {self.pos}")

    def number(self) -> int | Decimal:
        match = _NUMBER.match(self.text, self.pos)
        if not match:
            raise StructuredFieldError(f"bad number at position {self.pos}")
        self.pos = match.end()
        return Decimal(match.group()) if match.group(1) else int(match.group())

    def string(self) -> str:
        self.advance()
        chars: list[str] = []
        while True:
            char = self.advance()
            if char == "":
                raise StructuredFieldError("unterminated string")
            if char == '"':
                return "".join(chars)
            if char == "\\":
                char = self.advance()
                if char not in ('"', "\\"):
                    raise StructuredFieldError(f"bad escape at position {self.pos - 1}")
            elif not (0x20 <= ord(char) <= 0x7E):
                raise StructuredFieldError(f"bad character in string at position {self.pos - 1}")
            chars.append(char)

    def byte_sequence(self) -> bytes:
        self.advance()
        end = self.text.find(":", self.pos)
        if end < 0:
            raise StructuredFieldError("unterminated byte sequence")
        encoded = self.text[self.pos : end]
        self.pos = end + 1
        if not set(encoded) <= _BASE64:
            raise StructuredFieldError("byte sequence is not base64")
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        except binascii.Error as exc:
            raise StructuredFieldError("byte sequence is not base64") from exc
