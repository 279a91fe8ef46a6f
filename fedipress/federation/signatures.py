"""HTTP Signatures, the public face: sign our requests (draft-cavage), verify inbound ones
(draft-cavage or RFC 9421) against a key found by an injected KeyFetcher.

Pure apart from that fetcher: the clock is a parameter and failures are VerifyResult values,
never exceptions. The schemes themselves live in cavage.py and rfc9421.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fedipress.federation.cavage import prepare_cavage, sign_request
from fedipress.federation.keys import KeyFormatError, load_public_key
from fedipress.federation.rfc9421 import (
    prepare_rfc9421,
    render_signature_base,
    sign_request_rfc9421,
)
from fedipress.federation.signature_checks import (
    HeadersInput,
    PreparedSignature,
    Scheme,
    SignatureProblem,
    as_utc,
    format_http_date,
    key_id_problem,
    normalize_headers,
    rsa_verify,
)

__all__ = [
    "HeadersInput",
    "KeyFetcher",
    "KeyGone",
    "KeyProblem",
    "RemoteKey",
    "Scheme",
    "VerifyResult",
    "format_http_date",
    "normalize_headers",
    "render_signature_base",
    "sign_request",
    "sign_request_rfc9421",
    "verify_request",
]


@dataclass(frozen=True)
class RemoteKey:
    key_id: str
    owner: str
    public_key_pem: str


@dataclass(frozen=True)
class KeyGone:
    """The key's actor answered 404 or 410: the account is deleted (FEDERATION.md §4.4).

    `url` is the URL that answered, after redirects: the inbox accepts a self-Delete only
    when that URL is the actor's own."""

    status: int
    url: str = ""


@dataclass(frozen=True)
class KeyProblem:
    """Why the key cannot be had. `retry`: it may work later (timeout, network error, 5xx,
    429), so the inbox answers 503; otherwise the problem is permanent and it answers 401,
    so that senders do not retry for days."""

    reason: str
    retry: bool = False


KeyLookup = RemoteKey | KeyGone | KeyProblem | None


class KeyFetcher(Protocol):
    """Finds the public key for a key id; `refresh` skips caches (key rotation, FEDERATION.md §4.6).

    None means "cannot tell right now", like a KeyProblem with `retry`: the inbox answers 503.
    """

    async def __call__(self, key_id: str, refresh: bool) -> KeyLookup: ...


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of verify_request.

    `status` is what the inbox answers on failure: 401 for signature problems, 400 for headers
    it cannot parse, 503 when the key cannot be fetched now but may be later; it is 200 when
    `ok`. When the signer's actor is deleted, `reason` is "key gone", `gone_status` holds 404
    or 410 and `gone_url` the URL that answered, so the inbox can still accept that actor's
    self-Delete (FEDERATION.md §4.4: accept on 410, not 404).
    `owner` is the actor the key belongs to; the inbox requires it to equal the activity actor.
    """

    ok: bool
    reason: str
    key_id: str = ""
    owner: str = ""
    scheme: Scheme | None = None
    status: int = 401
    gone_status: int | None = None
    gone_url: str = ""


async def verify_request(
    method: str,
    path_and_query: str,
    headers: HeadersInput,
    body: bytes,
    *,
    public_host: str,
    public_scheme: str = "https",
    fetch_key: KeyFetcher,
    now: datetime,
) -> VerifyResult:
    """Verify an inbound request signed with draft-cavage or RFC 9421.

    `public_host` and `public_scheme` are what the sender addressed: proxies and serverless
    platforms rewrite Host (FEDERATION.md §4.4), so the `host` a signature covers comes from them,
    as does the RFC 9421 `@target-uri`. `body` must be the raw bytes received. When a fetched
    key fails, it is fetched once more with refresh=True and the signature retried: key
    rotation without an Update (FEDERATION.md §4.3).
    """
    fields = normalize_headers(headers)
    fields["host"] = public_host
    now = as_utc(now)
    prepared: PreparedSignature | SignatureProblem
    if "signature-input" in fields:
        url = f"{public_scheme}://{public_host}{path_and_query}"
        prepared = prepare_rfc9421(method, url, fields, body, now)
    else:
        prepared = prepare_cavage(method, path_and_query, fields, body, now)
    if isinstance(prepared, SignatureProblem):
        return VerifyResult(
            False, prepared.reason, prepared.key_id, "", prepared.scheme, prepared.status
        )
    malformed = key_id_problem(prepared.key_id)
    if malformed:
        return _failed(prepared, malformed)
    key = await fetch_key(prepared.key_id, refresh=False)
    result = _verify_with(prepared, key)
    if result.ok or not isinstance(key, RemoteKey):
        return result
    fresh = await fetch_key(prepared.key_id, refresh=True)
    if fresh is None:
        return _failed(prepared, "cannot refresh the signer's key right now", status=503)
    if isinstance(fresh, RemoteKey) and fresh.public_key_pem == key.public_key_pem:
        return result
    return _verify_with(prepared, fresh)


def _verify_with(prepared: PreparedSignature, key: KeyLookup) -> VerifyResult:
    if key is None:
        return _failed(prepared, "cannot fetch the signer's key right now", status=503)
    if isinstance(key, KeyProblem):
        status = 503 if key.retry else 401
        return _failed(prepared, f"cannot use the signer's key: {key.reason}", status)
    if isinstance(key, KeyGone):
        return VerifyResult(
            False,
            "key gone",
            prepared.key_id,
            "",
            prepared.scheme,
            401,
            gone_status=key.status,
            gone_url=key.url,
        )
    if key.key_id != prepared.key_id:
        return _failed(prepared, f"fetched key {key.key_id!r} is not the signing key")
    try:
        public_key = load_public_key(key.public_key_pem)
    except KeyFormatError:
        return _failed(prepared, "the signer's public key is unreadable")
    if not any(rsa_verify(public_key, prepared.signature, m) for m in prepared.messages):
        return _failed(prepared, "signature does not match")
    return VerifyResult(True, "", prepared.key_id, key.owner, prepared.scheme, 200)


def _failed(prepared: PreparedSignature, reason: str, status: int = 401) -> VerifyResult:
    return VerifyResult(False, reason, prepared.key_id, "", prepared.scheme, status)
