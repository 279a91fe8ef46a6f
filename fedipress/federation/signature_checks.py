"""What draft-cavage and RFC 9421 verification share: header normalisation, Mastodon's time
window, body digests, RSA PKCS#1 v1.5, and the value types the two schemes hand back.

Pure: no I/O, no clock (callers pass `now`).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fedipress.federation.keys import RSAPrivateKey, RSAPublicKey
from fedipress.federation.structured_fields import Item, StructuredFieldError, parse_dictionary

HeadersInput = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]
Scheme = Literal["cavage", "rfc9421"]

# Mastodon's window (app/lib/signed_request.rb): a signature without `expires` lasts 5 minutes,
# `expires` may stretch it to 12 hours, and 1 hour of clock skew is allowed either way
# (FEDERATION.md §4.2).
CLOCK_SKEW = timedelta(hours=1)
DEFAULT_EXPIRY = timedelta(minutes=5)
MAX_EXPIRY = timedelta(hours=12)

DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda body: hashlib.sha256(body).digest(),
    "sha-512": lambda body: hashlib.sha512(body).digest(),
}


@dataclass(frozen=True)
class PreparedSignature:
    """A well-formed signature whose time window and body digest checked out."""

    scheme: Scheme
    key_id: str
    signature: bytes
    messages: tuple[bytes, ...]  # accepted signing strings; any one may match


@dataclass(frozen=True)
class SignatureProblem:
    """Why a signature was refused before any key was needed; status 400 or 401."""

    reason: str
    scheme: Scheme | None
    key_id: str = ""
    status: int = 401


def normalize_headers(headers: HeadersInput) -> dict[str, str]:
    """Lower-case names; repeated fields joined with ", " (RFC 9110 §5.3), values trimmed."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        name, value = name.strip().lower(), value.strip()
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


def window_problem(created: datetime | None, expires: datetime | None, now: datetime) -> str:
    """Mastodon's matches_time_window? (signed_request.rb); "" when the time is acceptable."""
    if created is None:
        return "signature has no creation time (Date or created)"
    if created > now + CLOCK_SKEW:
        return "signature created in the future"
    deadline = min(expires or created + DEFAULT_EXPIRY, created + MAX_EXPIRY)
    if now > deadline + CLOCK_SKEW:
        return "signature expired"
    return ""


def digest_problem(header: str | None, body: bytes) -> tuple[str, int] | None:
    """Check `Digest: SHA-256=…, SHA-512=…` (RFC 3230) against the raw body.

    Algorithm names are matched case-insensitively (bovine sends `sha-256=`); unknown ones
    are skipped, but at least one known digest must be present, as Mastodon requires.
    """
    if header is None:
        return None
    found = False
    for part in header.split(","):
        algorithm, sep, value = part.strip().partition("=")
        if not sep:
            return ("malformed Digest header", 400)
        compute = DIGESTS.get(algorithm.strip().lower())
        if compute is None:
            continue
        try:
            expected = base64.b64decode(value.strip(), validate=True)
        except binascii.Error:
            return ("malformed Digest header", 400)
        if not hmac.compare_digest(expected, compute(body)):
            return ("Digest does not match the body", 401)
        found = True
    return None if found else ("Digest uses no supported algorithm (sha-256, sha-512)", 401)


def content_digest_problem(header: str | None, body: bytes) -> tuple[str, int] | None:
    """Check `Content-Digest: sha-256=:…:` (RFC 9530) against the raw body."""
    if header is None:
        return None
    try:
        members = parse_dictionary(header)
    except StructuredFieldError:
        # Mastodon answers 400 to an unparsable Content-Digest (FEDERATION.md §4.3).
        return ("malformed Content-Digest header", 400)
    found = False
    for algorithm, member in members.items():
        compute = DIGESTS.get(algorithm)
        if compute is None:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            return ("malformed Content-Digest header", 400)
        if not hmac.compare_digest(member.value, compute(body)):
            return ("Content-Digest does not match the body", 401)
        found = True
    return None if found else ("Content-Digest uses no supported algorithm", 401)


def format_http_date(now: datetime) -> str:
    """IMF-fixdate, e.g. "Sat, 28 Nov 2026 12:00:00 GMT"; Mastodon parses it with Time.httpdate."""
    return email.utils.format_datetime(as_utc(now), usegmt=True)


def parse_http_date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return as_utc(parsed)


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def key_id_problem(key_id: str) -> str | None:
    """Why a keyId cannot be fetched, or None: an absolute http(s) URL with a host (IDNA-
    encodable), a valid port, no credentials, no spaces or control characters. A malformed
    one is the sender's permanent mistake (401), never a reason to fetch, nor to raise."""
    try:
        parts = urlsplit(key_id)
        port = parts.port
        host = parts.hostname or ""
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        return f"keyId {key_id[:200]!r} is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return f"keyId {key_id[:200]!r} is not an http(s) URL"
    if not ascii_host or port == 0 or parts.username is not None or parts.password is not None:
        return f"keyId {key_id[:200]!r} has no usable host"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in key_id):
        return f"keyId {key_id[:200]!r} holds spaces or control characters"
    return None


def authority_of(url: str) -> str:
    """host[:port] as sent in Host and as RFC 9421 @authority: lower case, default port dropped."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(parts.scheme.lower())
    if parts.port is not None and parts.port != default_port:
        return f"{host}:{parts.port}"
    return host


def request_target_of(url: str) -> str:
    """Path and query as sent on the request line ("/" for an empty path)."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def rsa_sign(private_key: RSAPrivateKey, message: bytes) -> bytes:
    return private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def rsa_verify(public_key: RSAPublicKey, signature: bytes, message: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 with SHA-256: `rsa-sha256`, `hs2019` with an RSA key (GoToSocial
    signs hs2019 with RSA-SHA256), and RFC 9421 `rsa-v1_5-sha256`."""
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def put_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set a header, replacing any spelling of the same name."""
    for key in [k for k in headers if k.lower() == name.lower()]:
        del headers[key]
    headers[name] = value


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
