"""RFC 8941 dictionaries as Signature-Input, Signature and Content-Digest use them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fedipress.federation.structured_fields import (
    InnerList,
    Item,
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_inner_list,
)


def test_parse_dictionary__signature_input_round_trips() -> None:
    text = (
        'sig1=("@method" "@target-uri" "@query-param";name="a b");created=1618884473;'
        'keyid="https://a.example/k";alg="rsa-v1_5-sha256"'
    )

    parsed = parse_dictionary(text)

    inner = parsed["sig1"]
    assert isinstance(inner, InnerList)
    assert inner.items[2] == Item("@query-param", {"name": "a b"})
    assert inner.params == {
        "created": 1618884473,
        "keyid": "https://a.example/k",
        "alg": "rsa-v1_5-sha256",
    }
    assert "sig1=" + serialize_inner_list(inner) == text


def test_parse_dictionary__byte_sequences_and_whitespace() -> None:
    parsed = parse_dictionary("sha-256=:AAEC:,  sha-512=:/w==:")

    assert parsed == {"sha-256": Item(b"\x00\x01\x02"), "sha-512": Item(b"\xff")}


def test_parse_dictionary__bare_types() -> None:
    parsed = parse_dictionary('a=?0, b, c=-12, d=4.5, e=tok/en:1, f="q\\"uote"')

    assert parsed == {
        "a": Item(False),
        "b": Item(True),
        "c": Item(-12),
        "d": Item(Decimal("4.5")),
        "e": Item(Token("tok/en:1")),
        "f": Item('q"uote'),
    }
    assert isinstance(parsed["e"], Item) and type(parsed["e"].value) is Token


def test_serialize_inner_list__escapes_and_tokens() -> None:
    inner = InnerList((Item('a"b\\c'), Item(Token("tok"))), {"flag": True, "n": 3})

    assert serialize_inner_list(inner) == '("a\\"b\\\\c" tok);flag;n=3'


@pytest.mark.parametrize(
    "text",
    [
        'sig1=("@method"',  # unterminated inner list
        'sig1=("@method"x)',  # no space between items
        "Sig1=:AA==:",  # keys are lower case
        "a=:not base64!:",
        'a="unterminated',
        "a=1,",  # trailing comma
        "a=1 b=2",  # missing comma
        'a="bad \\x escape"',
        "a=?2",
    ],
)
def test_parse_dictionary__malformed(text) -> None:
    with pytest.raises(StructuredFieldError):
        parse_dictionary(text)


@pytest.mark.parametrize(
    "text",
    [
        "a=1234567890123.5",  # a decimal's integer part has at most 12 digits
        "a=123456789012345.5",
        "a=:YW=Jj:",  # '=' is padding, never inside a byte sequence
        "a=1.2345",  # at most three fraction digits
        "a=(1 2",  # unclosed inner list
        'a="caf\u00e9"',  # header values are ASCII
    ],
)
def test_parse_dictionary__refuses_what_rfc_8941_forbids(text: str) -> None:
    with pytest.raises(StructuredFieldError):
        parse_dictionary(text)
