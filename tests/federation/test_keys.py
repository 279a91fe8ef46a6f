"""Keys: PEM in both public forms, clear errors for unreadable keys, the key id."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from fedipress.errors import FedipressError
from fedipress.federation.keys import (
    KeyFormatError,
    generate_private_key,
    key_id_for,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
)


def test_load_private_key__round_trips_through_pem(alice_key) -> None:
    text = private_pem(alice_key)

    key = load_private_key(text)

    assert private_pem(key) == text
    assert key.key_size == 2048


def test_load_private_key__pkcs1_form(alice_key) -> None:
    pkcs1 = alice_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    # the traditional (PKCS#1) form, whose first line differs from PKCS#8's
    assert pkcs1.splitlines()[0] != private_pem(alice_key).encode().splitlines()[0]
    assert b" RSA " in pkcs1.splitlines()[0]

    assert load_private_key(pkcs1).private_numbers() == alice_key.private_numbers()


def test_load_public_key__spki(alice_key) -> None:
    pem = public_pem(alice_key)

    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert load_public_key(pem).public_numbers() == alice_key.public_key().public_numbers()


def test_load_public_key__pkcs1_rsa_public_key(alice_key) -> None:
    pkcs1 = alice_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert pkcs1.startswith(b"-----BEGIN RSA PUBLIC KEY-----")

    key = load_public_key(pkcs1.decode())

    assert key.public_numbers() == alice_key.public_key().public_numbers()


def test_load_public_key__crlf_and_surrounding_blanks(alice_key) -> None:
    pem = "\n  " + public_pem(alice_key).replace("\n", "\r\n") + "\r\n\n"

    assert load_public_key(pem).public_numbers() == alice_key.public_key().public_numbers()


def test_load_public_key__garbage_raises_with_hint() -> None:
    with pytest.raises(KeyFormatError) as caught:
        load_public_key("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")

    assert isinstance(caught.value, FedipressError)
    assert "BEGIN PUBLIC KEY" in caught.value.message
    assert "publicKeyPem" in caught.value.hint


def test_load_public_key__ed25519_is_refused() -> None:
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    with pytest.raises(KeyFormatError, match="not RSA"):
        load_public_key(pem)


def test_load_private_key__unreadable_text_raises_with_hint() -> None:
    with pytest.raises(KeyFormatError) as caught:
        load_private_key("not a key")

    assert "PKCS#8" in caught.value.message and "PKCS#1" in caught.value.message
    assert "fedipress keys generate" in caught.value.hint


def test_load_private_key__encrypted_key_raises(alice_key) -> None:
    encrypted = alice_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )

    with pytest.raises(KeyFormatError, match="encrypted"):
        load_private_key(encrypted)


def test_load_private_key__ed25519_is_refused() -> None:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

    with pytest.raises(KeyFormatError, match="not RSA"):
        load_private_key(pem)


def test_generate_private_key__rsa_2048_readable_back() -> None:
    key = generate_private_key()

    assert key.key_size == 2048
    assert load_private_key(private_pem(key)).private_numbers() == key.private_numbers()


def test_key_id_for__main_key_fragment() -> None:
    assert key_id_for("https://blog.example/ap/actor") == "https://blog.example/ap/actor#main-key"
