"""RFC 9421 HTTP Message Signatures, the `rsa-v1_5-sha256` subset Mastodon 4.5+ and Fedify
use (FEDERATION.md §4.5): `Signature-Input` / `Signature` with one label.

Pure: signs with a given key and clock; `prepare_rfc9421` parses and pre-checks an inbound
signature without touching any key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fedipress.federation.keys import RSAPrivateKey
from fedipress.federation.signature_checks import (
    HeadersInput,
    PreparedSignature,
    SignatureProblem,
    as_utc,
    authority_of,
    b64,
    content_digest_problem,
    normalize_headers,
    put_header,
    request_target_of,
    rsa_sign,
    window_problem,
)
from fedipress.federation.structured_fields import (
    InnerList,
    Item,
    StructuredFieldError,
    parse_dictionary,
    serialize_inner_list,
    serialize_item,
)

ALGORITHM = "rsa-v1_5-sha256"
_DERIVED = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@path", "@query", "@request-target"}
)


def sign_request_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    private_key: RSAPrivateKey,
    now: datetime,
    *,
    label: str = "sig1",
) -> dict[str, str]:
    """Sign with RFC 9421 `rsa-v1_5-sha256`, covering what Fedify covers.

    `@method @target-uri @authority`, plus `content-digest` (sha-256) for a POST or any body.
    We send cavage by default (FEDERATION.md §4.5); this serves tests and peers that ask for
    RFC 9421.
    """
    out = dict(headers)
    components = ["@method", "@target-uri", "@authority"]
    if body or method.upper() == "POST":
        digest = b64(hashlib.sha256(body or b"").digest())
        put_header(out, "Content-Digest", f"sha-256=:{digest}:")
        components.append("content-digest")
    covered = " ".join(f'"{c}"' for c in components)
    created = int(as_utc(now).timestamp())
    signature_input = f'{label}=({covered});created={created};keyid="{key_id}";alg="{ALGORITHM}"'
    base = render_signature_base(method, url, out, signature_input)
    put_header(out, "Signature-Input", signature_input)
    put_header(out, "Signature", f"{label}=:{b64(rsa_sign(private_key, base.encode()))}:")
    return out


def render_signature_base(
    method: str, url: str, headers: HeadersInput, signature_input: str
) -> str:
    """The RFC 9421 §2.5 signature base for a one-label `Signature-Input` header value.

    Raises StructuredFieldError (malformed input) or ValueError (a component it cannot supply).
    """
    _label, inner = _single_label(parse_dictionary(signature_input))
    return _signature_base(method, url, normalize_headers(headers), inner)


def prepare_rfc9421(
    method: str, url: str, fields: Mapping[str, str], body: bytes, now: datetime
) -> PreparedSignature | SignatureProblem:
    """Parse `Signature-Input` / `Signature` and check everything but the key.

    `url` is the public URL the sender addressed; `fields` are normalised headers.
    """

    def problem(reason: str, status: int = 401, key_id: str = "") -> SignatureProblem:
        return SignatureProblem(reason, "rfc9421", key_id, status)

    try:
        inputs = parse_dictionary(fields["signature-input"])
        signatures = parse_dictionary(fields.get("signature", ""))
    except StructuredFieldError as exc:
        return problem(f"malformed Signature-Input or Signature: {exc}", 400)
    if len(inputs) != 1 or len(signatures) != 1:
        # Mastodon accepts exactly one signature (signed_request.rb, HttpMessageSignature).
        return problem("expected exactly one signature")
    try:
        label, inner = _single_label(inputs)
    except StructuredFieldError as exc:
        return problem(str(exc), 400)
    params = inner.params
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        return problem("signature has no keyid")
    signature = signatures.get(label)
    if not isinstance(signature, Item) or not isinstance(signature.value, bytes):
        return problem(f"no Signature for label {label!r}", key_id=key_id)
    # Without `alg`, an RSA key means v1.5 with SHA-256, as Mastodon assumes.
    if params.get("alg", ALGORITHM) != ALGORITHM:
        return problem(f"unsupported signature algorithm {params['alg']!r}", key_id=key_id)
    created, expires = params.get("created"), params.get("expires")
    if type(created) is not int or (expires is not None and type(expires) is not int):
        return problem("signature needs integer 'created' (and 'expires')", key_id=key_id)
    covered = {item.value for item in inner.items}
    for required in ("@method", "@target-uri"):
        if required not in covered:
            return problem(f"{required} is not covered", key_id=key_id)
    if method.upper() == "POST" and "content-digest" not in covered:
        return problem("content-digest must be covered on POST", key_id=key_id)
    try:
        created_at = datetime.fromtimestamp(created, UTC)
        expires_at = datetime.fromtimestamp(expires, UTC) if expires is not None else None
    except (OverflowError, OSError, ValueError):
        return problem("signature created/expires out of range", key_id=key_id)
    late = window_problem(created_at, expires_at, now)
    if late:
        return problem(late, key_id=key_id)
    bad_digest = content_digest_problem(fields.get("content-digest"), body)
    if bad_digest:
        return problem(*bad_digest, key_id=key_id)
    try:
        base = _signature_base(method, url, fields, inner)
    except ValueError as exc:
        return problem(str(exc), key_id=key_id)
    return PreparedSignature("rfc9421", key_id, signature.value, (base.encode(),))


def _single_label(inputs: dict[str, Item | InnerList]) -> tuple[str, InnerList]:
    if len(inputs) != 1:
        raise StructuredFieldError("expected exactly one signature label")
    ((label, inner),) = inputs.items()
    if not isinstance(inner, InnerList):
        raise StructuredFieldError(f"Signature-Input {label!r} is not an inner list")
    if any(type(item.value) is not str for item in inner.items):
        raise StructuredFieldError("covered components must be quoted strings")
    return label, inner


def _signature_base(method: str, url: str, fields: Mapping[str, str], inner: InnerList) -> str:
    """RFC 9421 §2.5: one `"component": value` line each, then `"@signature-params"`.

    Raises ValueError for a component it cannot supply.
    """
    parts = urlsplit(url)
    lines = []
    seen: set[str] = set()
    for item in inner.items:
        name = str(item.value)
        if item.params:
            # ;sf ;key ;bs ;req ;name: nobody in the fediverse sends them yet.
            raise ValueError(f"component parameters on {name!r} are not supported")
        if name in seen:
            raise ValueError(f"component {name!r} is covered twice")
        seen.add(name)
        if name.startswith("@"):
            if name not in _DERIVED:
                raise ValueError(f"unsupported derived component {name!r}")
            value = {
                "@method": method.upper(),
                "@target-uri": url,
                "@authority": authority_of(url),
                "@scheme": parts.scheme.lower(),
                "@path": parts.path or "/",
                "@query": "?" + parts.query,
                "@request-target": request_target_of(url),
            }[name]
        elif name in fields:
            value = fields[name]
        else:
            raise ValueError(f"covered header {name!r} is missing")
        lines.append(f"{serialize_item(item)}: {value}")
    # The params are re-serialised canonically (RFC 8941 §4.1), as §2.3 defines the value.
    lines.append(f'"@signature-params": {serialize_inner_list(inner)}')
    return "\n".join(lines)
