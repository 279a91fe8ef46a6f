"""RFC 8941 Structured Field dictionaries, as Signature-Input, Signature and Content-Digest
(RFC 9421, RFC 9530) use them: parsing and serialising are the `http-sf` library's, which
passes the official structured-field test suite; this module gives its values the small
typed shape the signature code reads.

Pure: str in, values out; raises StructuredFieldError on malformed input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import http_sf


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


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an sf-dictionary (RFC 8941 §4.2.2); a repeated key keeps its last value."""
    try:
        # Header values are ASCII (RFC 8941 §4.2): anything else is malformed, not decoded.
        parsed = http_sf.parse(text.encode("ascii"), tltype="dictionary")
    except (http_sf.StructuredFieldError, UnicodeEncodeError, ValueError) as exc:
        raise StructuredFieldError(str(exc)) from None
    if not isinstance(parsed, dict):
        raise StructuredFieldError("not a dictionary")
    return {key: _member(value) for key, value in parsed.items()}


def serialize_item(item: Item) -> str:
    return http_sf.ser((_to_sf(item.value), _params_to_sf(item.params)))


def serialize_inner_list(inner: InnerList) -> str:
    items = [(_to_sf(i.value), _params_to_sf(i.params)) for i in inner.items]
    # A list holding the one inner list serialises as exactly that inner list.
    structure: Any = [(items, _params_to_sf(inner.params))]
    return http_sf.ser(structure)


def _member(value: Any) -> Member:
    bare, params = value
    if isinstance(bare, list):
        return InnerList(tuple(Item(_from_sf(v), _params(p)) for v, p in bare), _params(params))
    return Item(_from_sf(bare), _params(params))


def _params(params: dict[str, Any]) -> Params:
    return {key: _from_sf(value) for key, value in params.items()}


def _from_sf(value: Any) -> BareItem:
    if isinstance(value, http_sf.Token):
        return Token(str(value))
    if isinstance(value, bool | int | Decimal | str | bytes):
        return value
    # RFC 9651's dates and display strings: no signature header uses them.
    raise StructuredFieldError(f"unsupported structured field value {value!r}")


def _to_sf(value: BareItem) -> Any:
    if isinstance(value, Token):
        return http_sf.Token(str(value))
    if isinstance(value, str) and any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise StructuredFieldError(f"cannot serialise non-ASCII string {value!r}")
    return value


def _params_to_sf(params: Params) -> dict[str, Any]:
    return {key: _to_sf(value) for key, value in params.items()}
