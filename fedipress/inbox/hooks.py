"""Authenticating deploy notifications: our own HMAC header, or Netlify's signed JWS.

- `X-Fedipress-Timestamp: <unix seconds>` and `X-Fedipress-Signature: sha256=<hex>`:
  HMAC-SHA256 of `<timestamp>.<raw body>` with the shared secret (what a CI step sends; see
  docs/deploy.md). The timestamp must be within WINDOW_SECONDS of now.
- `X-Webhook-Signature: <JWS>`: Netlify's deploy notifications, an HS256 JWS whose payload
  carries `iss: netlify`, the SHA-256 of the body, and `iat`/`exp` (Netlify's "JWS secret
  token").

A valid signature authenticates one request: the service remembers it (`replay_key`) and
refuses it the second time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from dataclasses import dataclass

from fedipress.inbox.http import InboxRequest

WINDOW_SECONDS = 300  # how far an HMAC timestamp may be from now, either way
CLOCK_SKEW_SECONDS = 60  # how far in the future a JWS `iat` may be
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only: int() also takes "1_0" or "٣"


def sign_body(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Fedipress-Signature value for a body sent with X-Fedipress-Timestamp `timestamp`."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def hook_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Both headers of a deploy notification signed now (for CI scripts and tests)."""
    timestamp = int(time.time() if now is None else now)
    return {
        "X-Fedipress-Timestamp": str(timestamp),
        "X-Fedipress-Signature": sign_body(secret, body, timestamp),
    }


@dataclass(frozen=True)
class HookAuth:
    """The outcome of checking a deploy notification's signature."""

    ok: bool
    reason: str = "bad or missing deploy hook signature"
    replay_key: str = ""  # remembered once accepted: the same request again is a replay


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _decode_jws(token: str) -> tuple[str, str, dict[str, object], bytes] | None:
    """(header part, payload part, payload, signature) of a well-formed HS256 token."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64url(header_b64))
        payload = json.loads(_b64url(payload_b64))
        signature = _b64url(signature_b64)
    except (ValueError, RecursionError):  # bad base64 or JSON, or JSON nested too deep
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    if header.get("alg") != "HS256":
        return None
    return header_b64, payload_b64, payload, signature


def _time_claim(payload: dict[str, object], name: str) -> float | None:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None  # json.loads accepts Infinity


def netlify_jws_valid(token: str, secret: str, body: bytes, now: float | None = None) -> bool:
    """Netlify's JWS for this body, signed with `secret`, issued (`iat`) no later than now
    plus a small skew and not expired (`exp`); both claims are required (RFC 7519 §4.1.4,
    §4.1.6): a token without them would stay valid for ever."""
    decoded = _decode_jws(token)
    if decoded is None:
        return False
    header_b64, payload_b64, payload, signature = decoded
    current = time.time() if now is None else now
    issued, expires = _time_claim(payload, "iat"), _time_claim(payload, "exp")
    if issued is None or expires is None:
        return False
    if issued > current + CLOCK_SKEW_SECONDS or expires <= current:
        return False
    if payload.get("iss") != "netlify" or not isinstance(payload.get("sha256"), str):
        return False
    expected = hmac.new(
        secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    body_hash = hashlib.sha256(body).hexdigest()
    # Bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    return hmac.compare_digest(signature, expected) and hmac.compare_digest(
        str(payload["sha256"]).encode(), body_hash.encode()
    )


def _hmac_auth(request: InboxRequest, signature: str, secret: str, now: float) -> HookAuth:
    stamp = (request.header("x-fedipress-timestamp") or "").strip()
    if not _TIMESTAMP.fullmatch(stamp):
        return HookAuth(
            False, "deploy hook signature without a valid X-Fedipress-Timestamp (Unix seconds)"
        )
    if abs(int(stamp) - now) > WINDOW_SECONDS:
        return HookAuth(
            False, f"deploy hook signature timestamp more than {WINDOW_SECONDS}s from now"
        )
    expected = sign_body(secret, request.body, int(stamp))
    if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        return HookAuth(False)
    return HookAuth(True, replay_key="deploy-hook:" + expected)


def deploy_request_authentic(
    request: InboxRequest, secret: str, now: float | None = None
) -> HookAuth:
    current = time.time() if now is None else now
    ours = request.header("x-fedipress-signature")
    if ours is not None:
        return _hmac_auth(request, ours, secret, current)
    netlify = (request.header("x-webhook-signature") or "").strip()
    decoded = _decode_jws(netlify)
    if decoded is None or not netlify_jws_valid(netlify, secret, request.body, current):
        return HookAuth(False)
    # The decoded signature, not its text: base64 decoding ignores stray characters and
    # spare bits, so one signature has many spellings.
    return HookAuth(True, replay_key="deploy-hook:jws:" + decoded[3].hex())
