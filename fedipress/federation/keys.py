"""RSA keys for HTTP Signatures: generate, read and write PEM, and the key id of an actor.

Pure: PEM text in, key objects out; reading key files from disk is the caller's job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedipress.errors import FedipressError

RSAPrivateKey = rsa.RSAPrivateKey
RSAPublicKey = rsa.RSAPublicKey

# Mastodon generates RSA-2048 for its accounts (app/models/account.rb); so do we.
DEFAULT_KEY_BITS = 2048
_GENERATE_HINT = "Generate a new key pair with `fedipress keys generate`."


class KeyFormatError(FedipressError):
    """A PEM key that cannot be read, or that is not an RSA key."""


@dataclass(frozen=True)
class SigningKey:
    """What signs our requests: the published key id and its private key."""

    key_id: str
    private_key: RSAPrivateKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.private_key.public_key())


def generate_private_key(bits: int = DEFAULT_KEY_BITS) -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def load_private_key(pem: str | bytes) -> RSAPrivateKey:
    """Read an unencrypted PKCS#8 or PKCS#1 RSA private key; raises KeyFormatError."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data.strip(), password=None)
    except TypeError as exc:
        raise KeyFormatError(
            "the private key is encrypted; fedipress needs an unencrypted PEM key",
            hint="Decrypt it with `openssl pkey -in key.pem -out plain.pem`.",
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(
            "the private key is not a readable PEM key "
            "(expected an unencrypted PKCS#8 or PKCS#1 PEM block)",
            hint=_GENERATE_HINT,
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError(
            f"the private key is {type(key).__name__}, not RSA; "
            "draft-cavage signatures need an RSA key",
            hint=_GENERATE_HINT,
        )
    return key


def load_public_key(pem: str | bytes) -> RSAPublicKey:
    """Read an RSA public key, SPKI ('BEGIN PUBLIC KEY') or PKCS#1 ('BEGIN RSA PUBLIC KEY').

    Remote actors publish either form in `publicKeyPem`; raises KeyFormatError.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        # Some servers publish PEM with \r\n line ends or surrounding blanks.
        key = serialization.load_pem_public_key(data.replace(b"\r\n", b"\n").strip())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(
            "the public key is not a readable PEM key "
            "(expected '-----BEGIN PUBLIC KEY-----' or '-----BEGIN RSA PUBLIC KEY-----')",
            hint="Check the actor's 'publicKeyPem' value.",
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError(
            f"the public key is {type(key).__name__}, not RSA",
            hint="Mastodon uses Ed25519 keys only for RFC 9421 via FEP-521a; publish RSA.",
        )
    return key


def public_pem(private_key: RSAPrivateKey) -> str:
    """The SPKI PEM of the public half: what the actor publishes as `publicKeyPem`."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def private_pem(private_key: RSAPrivateKey) -> str:
    """Unencrypted PKCS#8 PEM, for the key file the operator keeps secret."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def fingerprint(public_key: RSAPublicKey) -> str:
    """A short name of a key pair: the SHA-256 of its public key (SPKI DER), in hex. It tells
    two keys of one key id apart, as during a rotation."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:32]


def key_id_for(actor_id: str) -> str:
    """`<actor id>#main-key`: Mastodon then takes the key embedded in the actor
    (FEDERATION.md §2.4)."""
    return f"{actor_id}#main-key"
