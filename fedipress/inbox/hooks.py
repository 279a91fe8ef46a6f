"""Authenticating deploy notifications: our own HMAC header, or Netlify's signed JWS.

- `X-Fedipress-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body with the shared secret
  (what a CI step sends; see docs/deploy.md).
- `X-Webhook-Signature: <JWS>`: Netlify's deploy notifications, an HS256 JWS whose payload
  carries `iss: netlify` and the SHA-256 of the body (Netlify's "JWS secret token").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from fedipress.inbox.http import InboxRequest


def sign_body(secret: str, body: bytes) -> str:
    """The X-Fedipress-Signature value for a body (for CI scripts and tests)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def netlify_jws_valid(token: str, secret: str, body: bytes, now: float | None = None) -> bool:
    """Netlify's JWS for this body, signed with `secret`, and not expired (`exp`, in Unix
    seconds, if present; `now` defaults to the current time)."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64url(header_b64))
        payload = json.loads(_b64url(payload_b64))
        signature = _b64url(signature_b64)
    except (ValueError, json.JSONDecodeError):
        return False
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return False
    if header.get("alg") != "HS256" or payload.get("iss") != "netlify":
        return False
    expires = payload.get("exp")
    if expires is not None and (
        not isinstance(expires, int | float) or expires <= (time.time() if now is None else now)
    ):
        return False  # a captured notification stops working once it expires (RFC 7519 §4.1.4)
    expected = hmac.new(
        secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    body_hash = hashlib.sha256(body).hexdigest()
    # Bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    return hmac.compare_digest(signature, expected) and hmac.compare_digest(
        str(payload.get("sha256", "")).encode(), body_hash.encode()
    )


def deploy_request_authentic(request: InboxRequest, secret: str, now: float | None = None) -> bool:
    ours = request.header("x-fedipress-signature")
    if ours is not None:
        return hmac.compare_digest(ours.strip().encode(), sign_body(secret, request.body).encode())
    netlify = request.header("x-webhook-signature")
    return netlify is not None and netlify_jws_valid(netlify.strip(), secret, request.body, now)
