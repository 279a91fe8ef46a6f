"""draft-cavage-http-signatures-12: what Mastodon, GoToSocial and most servers send
(FEDERATION.md §4).

Pure: signs with a given key and clock; `prepare_cavage` parses and pre-checks an inbound
signature without touching any key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from fedipress.documents.media import AP_MEDIA_TYPE
from fedipress.federation.keys import RSAPrivateKey
from fedipress.federation.signature_checks import (
    PreparedSignature,
    SignatureProblem,
    authority_of,
    b64,
    digest_problem,
    format_http_date,
    get_header,
    parse_http_date,
    put_header,
    request_target_of,
    rsa_sign,
    window_problem,
)

_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([^",\s]*))\s*(?:,|$)')


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    private_key: RSAPrivateKey,
    now: datetime,
) -> dict[str, str]:
    """Sign with draft-cavage `rsa-sha256`, as Mastodon does; returns the headers to send.

    Adds Date, Host, and for a POST (or any body) Digest and a default Content-Type. Signs
    `(request-target) host date digest content-type` with a body, `(request-target) host date`
    without: what Mastodon signs itself; it requires `host` on GET and `digest` on POST
    (FEDERATION.md §4.1).
    """
    out = dict(headers)
    put_header(out, "Host", authority_of(url))
    put_header(out, "Date", format_http_date(now))
    signed = ["(request-target)", "host", "date"]
    if body or method.upper() == "POST":
        put_header(out, "Digest", "SHA-256=" + b64(hashlib.sha256(body or b"").digest()))
        if get_header(out, "content-type") is None:
            out["Content-Type"] = AP_MEDIA_TYPE
        signed += ["digest", "content-type"]
    lines = [f"(request-target): {method.lower()} {request_target_of(url)}"]
    lines += [f"{name}: {(get_header(out, name) or '').strip()}" for name in signed[1:]]
    signature = rsa_sign(private_key, "\n".join(lines).encode())
    put_header(
        out,
        "Signature",
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(signed)}",'
        f'signature="{b64(signature)}"',
    )
    return out


def prepare_cavage(
    method: str, path_and_query: str, fields: Mapping[str, str], body: bytes, now: datetime
) -> PreparedSignature | SignatureProblem:
    """Parse `Signature` (or `Authorization: Signature …`) and check everything but the key.

    `fields` are normalised headers whose `host` is already the public host.
    """
    raw = fields.get("signature")
    if raw is None and fields.get("authorization", "")[:10].lower() == "signature ":
        raw = fields["authorization"]
    if raw is None:
        return SignatureProblem("missing signature", None)
    params = _parse_params(raw)
    if isinstance(params, str):
        # Mastodon answers 401 "Error parsing signature parameters" here, not 400.
        return SignatureProblem(params, "cavage")
    key_id = params.get("keyid", "")

    def problem(reason: str, status: int = 401) -> SignatureProblem:
        return SignatureProblem(reason, "cavage", key_id, status)

    if not key_id or "signature" not in params:
        return problem("Signature lacks keyId or signature")
    algorithm = params.get("algorithm", "rsa-sha256").lower()
    if algorithm not in _ALGORITHMS:
        return problem(f"unsupported signature algorithm {algorithm!r}")
    # Mastodon's default when `headers` is absent (signed_request.rb).
    signed = params.get("headers", "(created)" if algorithm == "hs2019" else "date")
    signed_names = signed.lower().split()
    weakness = _weakness(method, signed_names)
    if weakness:
        return problem(weakness)
    if algorithm != "hs2019" and ("(created)" in signed_names or "(expires)" in signed_names):
        # cavage-12 §2.3: these pseudo-headers are errors with rsa-* algorithms; Mastodon agrees.
        return problem("(created) and (expires) need algorithm hs2019")

    created: datetime | None = None
    expires: datetime | None = None
    try:
        # Only signed values decide freshness: a `created` or `expires` parameter counts when
        # `(created)` or `(expires)` is signed (hs2019 only, checked above), else anyone
        # could stretch the window of a captured request by adding one.
        if "(created)" in signed_names and "created" in params:
            created = datetime.fromtimestamp(int(float(params["created"])), UTC)
        if "(expires)" in signed_names and "expires" in params:
            expires = datetime.fromtimestamp(int(float(params["expires"])), UTC)
    except (ValueError, OverflowError, OSError):
        return problem("Signature created/expires is not a timestamp", 400)
    if created is None and "date" in signed_names and "date" in fields:
        created = parse_http_date(fields["date"])
        if created is None:
            return problem(f"unparsable Date header {fields['date']!r}", 400)
    late = window_problem(created, expires, now)
    if late:
        return problem(late)
    bad_digest = digest_problem(fields.get("digest"), body)
    if bad_digest:
        return problem(*bad_digest)
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except binascii.Error:
        return problem("signature is not base64")

    targets = [path_and_query]
    if "?" in path_and_query:
        # Mastodon ≥4.3 signs the query, older senders do not; Mastodon and GoToSocial accept
        # both (FEDERATION.md §4.1, §11), so do we.
        targets.append(path_and_query.split("?", 1)[0])
    messages = []
    for target in targets:
        lines = []
        for name in signed_names:
            if name == "(request-target)":
                lines.append(f"(request-target): {method.lower()} {target}")
            elif name in ("(created)", "(expires)"):
                value = params.get(name[1:-1])
                if value is None:
                    return problem(f"{name} is signed but the parameter is missing")
                lines.append(f"{name}: {value}")
            elif name in fields:
                lines.append(f"{name}: {fields[name]}")
            else:
                return problem(f"signed header {name!r} is missing")
        messages.append("\n".join(lines).encode())
    return PreparedSignature("cavage", key_id, signature, tuple(messages))


def _parse_params(raw: str) -> dict[str, str] | str:
    """keyId="…",algorithm="…",… into lower-case names; a str is why it is refused."""
    text = raw.strip()
    # Some senders repeat the auth scheme inside the header; Mastodon tolerates it
    # (FEDERATION.md §4.3).
    if text[:10].lower() == "signature ":
        text = text[10:].lstrip()
    params: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _PARAM.match(text, pos)
        if not match or match.end() == pos:
            return "malformed Signature header"
        name = match.group(1).lower()
        if name in params:
            # Mastodon 4.5.5+ refuses duplicates: which copy counts would be ambiguous.
            return f"duplicate Signature parameter {name!r}"
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
    return params


def _weakness(method: str, signed: list[str]) -> str:
    """Mastodon's minimum signed set (signed_request.rb, verify_signature_strength!)."""
    if "date" not in signed and "(created)" not in signed:
        return "neither date nor (created) is signed"
    if "(request-target)" not in signed and "digest" not in signed:
        return "neither (request-target) nor digest is signed"
    if method.upper() == "GET" and "host" not in signed:
        return "host must be signed on GET"
    if method.upper() == "POST" and "digest" not in signed:
        return "digest must be signed on POST"
    return ""
