"""Signing and verifying: round trips for both schemes, one tampering case per signed part,
Mastodon's time window and strength rules, key lookup failures and key rotation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fedipress.federation.keys import public_pem
from fedipress.federation.signatures import (
    KeyGone,
    KeyProblem,
    RemoteKey,
    format_http_date,
    render_signature_base,
    sign_request,
    sign_request_rfc9421,
    verify_request,
)

INBOX = "https://blog.example/ap/inbox"
ALICE = "https://remote.example/users/alice"
ALICE_KEY = ALICE + "#main-key"
BODY = b'{"@context":"https://www.w3.org/ns/activitystreams","type":"Follow","id":"x"}'


def verify(headers, key_table, now, *, method="POST", path="/ap/inbox", body=BODY, **kwargs):
    kwargs.setdefault("public_host", "blog.example")
    return asyncio.run(
        verify_request(method, path, headers, body, fetch_key=key_table, now=now, **kwargs)
    )


def signed_post(private_key, now, *, url=INBOX, body=BODY, headers=None):
    return sign_request("POST", url, headers or {}, body, ALICE_KEY, private_key, now)


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# --- signing ---------------------------------------------------------------------------------


def test_sign_request__post_headers_as_mastodon_sends_them(alice_key, now) -> None:
    headers = signed_post(alice_key, now)

    assert headers["Host"] == "blog.example"
    assert headers["Date"] == "Sat, 28 Nov 2026 12:00:00 GMT"
    assert headers["Digest"] == "SHA-256=" + b64_sha256(BODY)
    assert headers["Content-Type"] == "application/activity+json"
    assert headers["Signature"].startswith(
        f'keyId="{ALICE_KEY}",algorithm="rsa-sha256",'
        'headers="(request-target) host date digest content-type",signature="'
    )


def test_sign_request__get_signs_request_target_host_date(alice_key, now) -> None:
    headers = sign_request("GET", INBOX, {"Accept": "x"}, None, ALICE_KEY, alice_key, now)

    assert 'headers="(request-target) host date"' in headers["Signature"]
    assert "Digest" not in headers and "Content-Type" not in headers
    assert headers["Accept"] == "x"


def test_sign_request__keeps_callers_content_type_and_replaces_host_spelling(
    alice_key, now
) -> None:
    headers = signed_post(
        alice_key, now, headers={"content-type": "application/ld+json", "host": "wrong"}
    )

    assert headers["content-type"] == "application/ld+json"
    assert "host" not in headers and headers["Host"] == "blog.example"


def test_sign_request__host_keeps_non_default_port(alice_key, now) -> None:
    headers = signed_post(alice_key, now, url="http://127.0.0.1:8123/inbox")

    assert headers["Host"] == "127.0.0.1:8123"


# --- round trips -----------------------------------------------------------------------------


def test_verify_request__cavage_post_round_trip(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)

    result = verify(signed_post(alice_key, now), key_table, now)

    assert result.ok, result.reason
    assert (result.key_id, result.owner, result.scheme, result.status) == (
        ALICE_KEY, ALICE, "cavage", 200,
    )  # fmt: skip
    assert key_table.calls == [(ALICE_KEY, False)]


def test_verify_request__cavage_get_round_trip_with_query(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    url = "https://blog.example/ap/outbox?page=2"
    headers = sign_request("GET", url, {}, None, ALICE_KEY, alice_key, now)

    result = verify(headers, key_table, now, method="GET", path="/ap/outbox?page=2", body=b"")

    assert result.ok, result.reason


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_verify_request__rfc9421_round_trip(method, alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    body = BODY if method == "POST" else b""
    headers = sign_request_rfc9421(method, INBOX, {}, body or None, ALICE_KEY, alice_key, now)

    result = verify(headers, key_table, now, method=method, body=body)

    assert result.ok, result.reason
    assert (result.scheme, result.owner) == ("rfc9421", ALICE)


def test_verify_request__query_not_signed_by_older_senders(alice_key, key_table, now) -> None:
    # Mastodon <4.3 signed the path without the query; Mastodon accepts both, so do we.
    key_table.add(ALICE_KEY, alice_key)
    headers = signed_post(alice_key, now, url=INBOX)

    result = verify(headers, key_table, now, path="/ap/inbox?from=old")

    assert result.ok, result.reason


def test_verify_request__headers_as_pairs_in_any_case(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    pairs = [(name.upper(), value) for name, value in signed_post(alice_key, now).items()]

    assert verify(pairs, key_table, now).ok


def test_verify_request__signed_headers_in_any_order(alice_key, key_table, now) -> None:
    # Given: a request signed with the header list in another order than ours
    key_table.add(ALICE_KEY, alice_key)
    headers = signed_post(alice_key, now)
    lines = [
        f"content-type: {headers['Content-Type']}",
        f"digest: {headers['Digest']}",
        f"date: {headers['Date']}",
        "(request-target): post /ap/inbox",
        "host: blog.example",
    ]
    signature = base64.b64encode(_pkcs1_sign(alice_key, "\n".join(lines))).decode()
    headers["Signature"] = (
        f'keyId="{ALICE_KEY}",algorithm="hs2019",'
        f'headers="content-type digest date (request-target) host",signature="{signature}"'
    )

    # When / Then
    assert verify(headers, key_table, now).ok


# --- tampering: every signed part ------------------------------------------------------------


def test_verify_request__tampered_body(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)

    result = verify(signed_post(alice_key, now), key_table, now, body=BODY + b" ")

    assert (result.ok, result.status, result.reason) == (
        False, 401, "Digest does not match the body",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "verify_kwargs"),
    [
        pytest.param({"Date": "Sat, 28 Nov 2026 11:59:00 GMT"}, {}, id="date"),
        pytest.param({"Content-Type": "application/ld+json"}, {}, id="content-type"),
        pytest.param(
            {"Digest": "SHA-256=" + b64_sha256(b"{}")}, {"body": b"{}"}, id="digest-and-body"
        ),
        pytest.param({}, {"public_host": "other.example"}, id="host"),
        pytest.param({}, {"path": "/ap/other-inbox"}, id="request-target-path"),
        pytest.param({}, {"method": "PUT"}, id="request-target-method"),
    ],
)
def test_verify_request__tampered_signed_header(
    change, verify_kwargs, alice_key, key_table, now
) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = {**signed_post(alice_key, now), **change}

    result = verify(headers, key_table, now, **verify_kwargs)

    assert (result.ok, result.status, result.reason) == (False, 401, "signature does not match")


def test_verify_request__wrong_key(alice_key, bob_key, key_table, now) -> None:
    # Given: the key table holds alice's key, but bob signed with alice's key id
    key_table.add(ALICE_KEY, alice_key)

    # When
    result = verify(signed_post(bob_key, now), key_table, now)

    # Then: refused, after one refresh in case alice rotated her key
    assert (result.ok, result.status, result.reason) == (False, 401, "signature does not match")
    assert key_table.calls == [(ALICE_KEY, False), (ALICE_KEY, True)]


def test_verify_request__rfc9421_tampered_body(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = sign_request_rfc9421("POST", INBOX, {}, BODY, ALICE_KEY, alice_key, now)

    result = verify(headers, key_table, now, body=b"{}")

    assert (result.status, result.reason) == (401, "Content-Digest does not match the body")


@pytest.mark.parametrize(
    "verify_kwargs",
    [
        pytest.param({"public_host": "other.example"}, id="authority"),
        pytest.param({"public_scheme": "http"}, id="target-uri-scheme"),
        pytest.param({"path": "/ap/inbox?x=1"}, id="target-uri-query"),
        pytest.param({"method": "PUT"}, id="method"),
    ],
)
def test_verify_request__rfc9421_tampered_component(
    verify_kwargs, alice_key, key_table, now
) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = sign_request_rfc9421("POST", INBOX, {}, BODY, ALICE_KEY, alice_key, now)

    result = verify(headers, key_table, now, **verify_kwargs)

    assert (result.ok, result.status, result.reason) == (False, 401, "signature does not match")


def test_verify_request__rfc9421_tampered_content_digest(alice_key, key_table, now) -> None:
    # Body and Content-Digest swapped together: only the signature can tell.
    key_table.add(ALICE_KEY, alice_key)
    headers = sign_request_rfc9421("POST", INBOX, {}, BODY, ALICE_KEY, alice_key, now)
    headers["Content-Digest"] = f"sha-256=:{b64_sha256(b'{}')}:"

    result = verify(headers, key_table, now, body=b"{}")

    assert (result.status, result.reason) == (401, "signature does not match")


# --- time window (Mastodon: Date in [now - 65 min, now + 60 min]) ----------------------------


@pytest.mark.parametrize(
    ("signed_at", "ok"),
    [
        pytest.param(timedelta(hours=-2), False, id="2h-old"),
        pytest.param(timedelta(minutes=-66), False, id="66min-old"),
        pytest.param(timedelta(minutes=-64), True, id="64min-old"),
        pytest.param(timedelta(minutes=59), True, id="59min-ahead"),
        pytest.param(timedelta(minutes=61), False, id="61min-ahead"),
    ],
)
def test_verify_request__date_window(signed_at, ok, alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)

    result = verify(signed_post(alice_key, now + signed_at), key_table, now)

    assert result.ok is ok
    if not ok:
        assert result.status == 401
        assert result.reason in ("signature expired", "signature created in the future")
        assert key_table.calls == []  # refused before any key lookup


def test_verify_request__expired_date(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)

    result = verify(signed_post(alice_key, now - timedelta(hours=2)), key_table, now)

    assert (result.status, result.reason) == (401, "signature expired")


@pytest.mark.parametrize(
    ("signed_at", "expires_after", "ok"),
    [
        pytest.param(timedelta(hours=-6), timedelta(hours=8), True, id="expires-stretches"),
        pytest.param(timedelta(hours=-6), None, False, id="no-expires-5min"),
        pytest.param(timedelta(hours=-14), timedelta(hours=20), False, id="capped-at-12h"),
    ],
)
def test_verify_request__hs2019_created_and_expires(
    signed_at, expires_after, ok, alice_key, key_table, now
) -> None:
    # Given: hs2019 with (created)/(expires) and no Date header at all
    key_table.add(ALICE_KEY, alice_key)
    created = int((now + signed_at).timestamp())
    names = ["(request-target)", "host", "(created)", "digest"]
    lines = [
        "(request-target): post /ap/inbox",
        "host: blog.example",
        f"(created): {created}",
        f"digest: SHA-256={b64_sha256(BODY)}",
    ]
    extra = ""
    if expires_after is not None:
        expires = int((now + signed_at + expires_after).timestamp())
        names.append("(expires)")
        lines.append(f"(expires): {expires}")
        extra = f",expires={expires}"
    signature = base64.b64encode(_pkcs1_sign(alice_key, "\n".join(lines))).decode()
    headers = {
        "Digest": f"SHA-256={b64_sha256(BODY)}",
        "Signature": f'keyId="{ALICE_KEY}",algorithm="hs2019",created={created}{extra},'
        f'headers="{" ".join(names)}",signature="{signature}"',
    }

    # When
    result = verify(headers, key_table, now)

    # Then
    assert result.ok is ok, result.reason


@pytest.mark.parametrize(
    ("algorithm", "parameter"),
    [("hs2019", "created"), ("hs2019", "expires"), ("rsa-sha256", "expires")],
)
def test_verify_request__unsigned_created_or_expires_do_not_count(
    algorithm, parameter, alice_key, key_table, now
) -> None:
    # Given: a real signature over a Date two hours old, (created)/(expires) not signed
    key_table.add(ALICE_KEY, alice_key)
    headers = signed_post(alice_key, now - timedelta(hours=2))
    headers["Signature"] = headers["Signature"].replace("rsa-sha256", algorithm)
    # and an unsigned parameter that would make it fresh
    value = int(now.timestamp()) + (3600 if parameter == "expires" else 0)
    headers["Signature"] += f",{parameter}={value}"

    # When
    result = verify(headers, key_table, now)

    # Then: the signed Date decides
    assert (result.status, result.reason) == (401, "signature expired")


def test_verify_request__signed_created_beats_an_old_date(alice_key, key_table, now) -> None:
    # Given: hs2019 signing (created)=now and an old Date header
    key_table.add(ALICE_KEY, alice_key)
    created = int(now.timestamp())
    old = format_http_date(now - timedelta(hours=2))
    lines = [
        "(request-target): post /ap/inbox",
        "host: blog.example",
        f"(created): {created}",
        f"date: {old}",
        f"digest: SHA-256={b64_sha256(BODY)}",
    ]
    signature = base64.b64encode(_pkcs1_sign(alice_key, "\n".join(lines))).decode()
    headers = {
        "Date": old,
        "Digest": f"SHA-256={b64_sha256(BODY)}",
        "Signature": f'keyId="{ALICE_KEY}",algorithm="hs2019",created={created},'
        f'headers="(request-target) host (created) date digest",signature="{signature}"',
    }

    # When / Then: the signed created decides
    assert verify(headers, key_table, now).ok


def test_verify_request__created_pseudo_header_with_rsa_sha256(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = signed_post(alice_key, now)
    headers["Signature"] = headers["Signature"].replace(
        'headers="(request-target) host date', 'created=1,headers="(request-target) (created) host'
    )

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (401, "(created) and (expires) need algorithm hs2019")


def test_verify_request__unparsable_date_is_400(alice_key, key_table, now) -> None:
    headers = {**signed_post(alice_key, now), "Date": "yesterday"}

    result = verify(headers, key_table, now)

    assert (result.ok, result.status) == (False, 400)
    assert "Date" in result.reason


def test_verify_request__rfc9421_expired(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = sign_request_rfc9421(
        "POST", INBOX, {}, BODY, ALICE_KEY, alice_key, now - timedelta(minutes=66)
    )

    result = verify(headers, key_table, now)

    assert (result.ok, result.status, result.reason) == (False, 401, "signature expired")


def test_verify_request__rfc9421_created_in_future(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = sign_request_rfc9421(
        "POST", INBOX, {}, BODY, ALICE_KEY, alice_key, now + timedelta(minutes=61)
    )

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (401, "signature created in the future")


def test_verify_request__rfc9421_past_expires_param(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    created = int((now - timedelta(hours=3)).timestamp())
    headers = _rfc9421_headers(
        alice_key,
        f'("@method" "@target-uri" "content-digest");created={created};expires={created + 60};'
        f'keyid="{ALICE_KEY}"',
    )

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (401, "signature expired")


# --- Mastodon's strength rules and header parsing --------------------------------------------


def test_verify_request__digest_not_signed_on_post(alice_key, key_table, now) -> None:
    # Given: a valid signature over `(request-target) host date` only, on a POST
    key_table.add(ALICE_KEY, alice_key)
    headers = signed_post(alice_key, now)
    lines = ["(request-target): post /ap/inbox", "host: blog.example", f"date: {headers['Date']}"]
    signature = base64.b64encode(_pkcs1_sign(alice_key, "\n".join(lines))).decode()
    headers["Signature"] = (
        f'keyId="{ALICE_KEY}",algorithm="rsa-sha256",headers="(request-target) host date",'
        f'signature="{signature}"'
    )

    # When
    result = verify(headers, key_table, now)

    # Then
    assert (result.ok, result.status, result.reason) == (
        False, 401, "digest must be signed on POST",
    )  # fmt: skip
    assert key_table.calls == []


def test_verify_request__host_not_signed_on_get(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = sign_request("GET", INBOX, {}, None, ALICE_KEY, alice_key, now)
    headers["Signature"] = headers["Signature"].replace(
        'headers="(request-target) host date"', 'headers="(request-target) date"'
    )

    result = verify(headers, key_table, now, method="GET", body=b"")

    assert (result.status, result.reason) == (401, "host must be signed on GET")


def test_verify_request__date_not_signed(alice_key, key_table, now) -> None:
    headers = signed_post(alice_key, now)
    headers["Signature"] = headers["Signature"].replace(" date ", " ")

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (401, "neither date nor (created) is signed")


def test_verify_request__duplicate_parameter(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = signed_post(alice_key, now)
    headers["Signature"] = 'keyId="https://evil.example/key",' + headers["Signature"]

    result = verify(headers, key_table, now)

    assert (result.ok, result.status, result.reason) == (
        False, 401, "duplicate Signature parameter 'keyid'",
    )  # fmt: skip
    assert key_table.calls == []


def test_verify_request__stray_signature_prefix_tolerated(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = signed_post(alice_key, now)
    headers["Signature"] = "Signature " + headers["Signature"]

    assert verify(headers, key_table, now).ok


def test_verify_request__authorization_signature_header(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = signed_post(alice_key, now)
    headers["Authorization"] = "Signature " + headers.pop("Signature")

    assert verify(headers, key_table, now).ok


def test_verify_request__missing_signature(key_table, now) -> None:
    result = verify({"Date": "Sat, 28 Nov 2026 12:00:00 GMT"}, key_table, now)

    assert (result.ok, result.status, result.reason, result.scheme) == (
        False, 401, "missing signature", None,
    )  # fmt: skip


def test_verify_request__unsupported_algorithm(alice_key, key_table, now) -> None:
    headers = signed_post(alice_key, now)
    headers["Signature"] = headers["Signature"].replace("rsa-sha256", "hmac-sha256")

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (401, "unsupported signature algorithm 'hmac-sha256'")


def test_verify_request__signed_header_missing(alice_key, key_table, now) -> None:
    headers = signed_post(alice_key, now)
    del headers["Content-Type"]

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (401, "signed header 'content-type' is missing")


def test_verify_request__several_digests_including_sha512(alice_key, key_table, now) -> None:
    # Given: Digest with SHA-512 first and an unknown algorithm, all signed
    key_table.add(ALICE_KEY, alice_key)
    sha512 = base64.b64encode(hashlib.sha512(BODY).digest()).decode()
    digest = f"sha-512={sha512}, MD5=AAAA, SHA-256={b64_sha256(BODY)}"
    headers = signed_post(alice_key, now)
    headers["Digest"] = digest
    lines = [
        "(request-target): post /ap/inbox",
        "host: blog.example",
        f"date: {headers['Date']}",
        f"digest: {digest}",
    ]
    signature = base64.b64encode(_pkcs1_sign(alice_key, "\n".join(lines))).decode()
    headers["Signature"] = (
        f'keyId="{ALICE_KEY}",headers="(request-target) host date digest",signature="{signature}"'
    )

    # When
    ok = verify(headers, key_table, now)
    tampered = verify(headers, key_table, now, body=BODY + b"\n")

    # Then: both known digests are checked against the raw body
    assert ok.ok, ok.reason
    assert tampered.reason == "Digest does not match the body"


def test_verify_request__only_unsupported_digest(alice_key, key_table, now) -> None:
    headers = {**signed_post(alice_key, now), "Digest": "MD5=rL0Y20zC+Fzt72VPzMSk2A=="}

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (
        401, "Digest uses no supported algorithm (sha-256, sha-512)",
    )  # fmt: skip


def test_verify_request__malformed_digest_is_400(alice_key, key_table, now) -> None:
    headers = {**signed_post(alice_key, now), "Digest": "SHA-256"}

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (400, "malformed Digest header")


# --- RFC 9421 specifics ----------------------------------------------------------------------


def test_render_signature_base__rfc9421_appendix_b23_full_coverage() -> None:
    # RFC 9421 Appendix B.2.3, with the B.2 test request.
    headers = {
        "Host": "example.com",
        "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
        "Content-Type": "application/json",
        "Content-Digest": "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYl"
        "lu7BNNyealdVLvRwEmTHWXvJwew==:",
        "Content-Length": "18",
    }
    signature_input = (
        'sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" '
        '"content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"'
    )

    base = render_signature_base(
        "POST", "https://example.com/foo?param=Value&Pet=dog", headers, signature_input
    )

    assert base == "\n".join(
        [
            '"date": Tue, 20 Apr 2021 02:07:55 GMT',
            '"@method": POST',
            '"@path": /foo',
            '"@query": ?param=Value&Pet=dog',
            '"@authority": example.com',
            '"content-type": application/json',
            '"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBW'
            "nrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
            '"content-length": 18',
            '"@signature-params": ("date" "@method" "@path" "@query" "@authority" '
            '"content-type" "content-digest" "content-length");created=1618884473;'
            'keyid="test-key-rsa-pss"',
        ]
    )


def test_render_signature_base__rfc9421_appendix_b21_minimal() -> None:
    signature_input = (
        'sig-b21=();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"'
    )

    base = render_signature_base("POST", "https://example.com/foo", {}, signature_input)

    assert base == (
        '"@signature-params": ();created=1618884473;keyid="test-key-rsa-pss";'
        'nonce="b3k2pp5k7z-50gnwp.yemd"'
    )


def test_verify_request__rfc9421_without_alg_means_rsa_v1_5(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    created = int(now.timestamp())
    headers = _rfc9421_headers(
        alice_key,
        f'("@method" "@target-uri" "@path" "@query" "@request-target" "@scheme" "content-type" '
        f'"content-digest");created={created};keyid="{ALICE_KEY}"',
    )

    result = verify(headers, key_table, now)

    assert result.ok, result.reason


def test_verify_request__rfc9421_sha512_content_digest(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    sha512 = base64.b64encode(hashlib.sha512(BODY).digest()).decode()
    created = int(now.timestamp())
    headers = _rfc9421_headers(
        alice_key,
        f'("@method" "@target-uri" "content-digest");created={created};keyid="{ALICE_KEY}"',
        content_digest=f"sha-512=:{sha512}:",
    )

    assert verify(headers, key_table, now).ok
    assert verify(headers, key_table, now, body=b"{}").reason == (
        "Content-Digest does not match the body"
    )


@pytest.mark.parametrize(
    ("signature_input", "status", "reason"),
    [
        pytest.param(
            '("@method" "@target-uri");created={created};keyid="{key}"',
            401, "content-digest must be covered on POST", id="digest-not-covered",
        ),
        pytest.param(
            '("@method" "content-digest");created={created};keyid="{key}"',
            401, "@target-uri is not covered", id="target-uri-not-covered",
        ),
        pytest.param(
            '("@method" "@target-uri" "content-digest");keyid="{key}"',
            401, "signature needs integer 'created' (and 'expires')", id="no-created",
        ),
        pytest.param(
            '("@method" "@target-uri" "content-digest");created={created};keyid="{key}";'
            'alg="ed25519"',
            401, "unsupported signature algorithm 'ed25519'", id="other-alg",
        ),
        pytest.param(
            '("@method" "@target-uri" "content-digest" "@query-param";name="a");'
            'created={created};keyid="{key}"',
            401, "component parameters on '@query-param' are not supported", id="component-param",
        ),
        pytest.param(
            '("@method" "@target-uri" "content-digest" "x-missing");created={created};'
            'keyid="{key}"',
            401, "covered header 'x-missing' is missing", id="missing-header",
        ),
        pytest.param(
            '("@method" "@target-uri" "content-digest");created={created}',
            401, "signature has no keyid", id="no-keyid",
        ),
        pytest.param(
            '("@method" "@target-uri" "content-digest";created={created}',
            400, None, id="malformed-input",
        ),
    ],
)  # fmt: skip
def test_verify_request__rfc9421_refused(
    signature_input, status, reason, alice_key, key_table, now
) -> None:
    key_table.add(ALICE_KEY, alice_key)
    text = signature_input.format(created=int(now.timestamp()), key=ALICE_KEY)
    headers = _rfc9421_headers(alice_key, text, sign=False)

    result = verify(headers, key_table, now)

    assert (result.ok, result.status) == (False, status)
    if reason is not None:
        assert result.reason == reason
    assert key_table.calls == []


def test_verify_request__rfc9421_two_signatures_refused(alice_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    headers = sign_request_rfc9421("POST", INBOX, {}, BODY, ALICE_KEY, alice_key, now)
    headers["Signature-Input"] += ", " + headers["Signature-Input"].replace("sig1=", "sig2=")
    headers["Signature"] += ", " + headers["Signature"].replace("sig1=", "sig2=")

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (401, "expected exactly one signature")


def test_verify_request__rfc9421_malformed_content_digest_is_400(alice_key, key_table, now) -> None:
    headers = sign_request_rfc9421("POST", INBOX, {}, BODY, ALICE_KEY, alice_key, now)
    headers["Content-Digest"] = "sha-256=:not base64!:"

    result = verify(headers, key_table, now)

    assert (result.status, result.reason) == (400, "malformed Content-Digest header")


# --- keys: gone, unavailable, rotation -------------------------------------------------------


@pytest.mark.parametrize("status", [410, 404])
def test_verify_request__key_gone(status, alice_key, key_table, now) -> None:
    # Given: the signer's actor is deleted (Mastodon's Delete(actor) fan-out, FEDERATION.md §4.4)
    key_table.keys[ALICE_KEY] = KeyGone(status)

    # When
    result = verify(signed_post(alice_key, now), key_table, now)

    # Then: refused, but the inbox can see why and accept a self-Delete on 410
    assert (result.ok, result.status, result.reason, result.gone_status) == (
        False, 401, "key gone", status,
    )  # fmt: skip
    assert result.key_id == ALICE_KEY


def test_verify_request__key_unavailable_is_503(alice_key, key_table, now) -> None:
    result = verify(signed_post(alice_key, now), key_table, now)

    assert (result.ok, result.status) == (False, 503)
    assert key_table.calls == [(ALICE_KEY, False)]


@pytest.mark.parametrize(("retry", "status"), [(True, 503), (False, 401)])
def test_verify_request__key_problem_status(retry, status, alice_key, key_table, now) -> None:
    key_table.keys[ALICE_KEY] = KeyProblem("the key host said so", retry=retry)

    result = verify(signed_post(alice_key, now), key_table, now)

    assert (result.ok, result.status) == (False, status)
    assert "the key host said so" in result.reason


def test_verify_request__refresh_with_a_lasting_problem_is_401(
    alice_key, bob_key, key_table, now
) -> None:
    key_table.add(ALICE_KEY, alice_key)
    key_table.after_refresh[ALICE_KEY] = KeyProblem("no longer listed")

    result = verify(signed_post(bob_key, now), key_table, now)

    assert (result.ok, result.status) == (False, 401)


@pytest.mark.parametrize(
    "key_id",
    ["https://[", "http://[::1", "https://a:99999/k", "https://u@a/k", "https://\u2603..x/k"],
)
def test_verify_request__malformed_key_id_is_401_without_lookup(
    key_id, alice_key, key_table, now
) -> None:
    headers = sign_request("POST", INBOX, {}, BODY, key_id, alice_key, now)

    result = verify(headers, key_table, now)

    assert (result.ok, result.status) == (False, 401)
    assert "keyId" in result.reason
    assert key_table.calls == []


def test_verify_request__key_rotation_refreshes_once(alice_key, bob_key, key_table, now) -> None:
    # Given: a cached old key; the actor now publishes a new one under the same key id
    key_table.add(ALICE_KEY, alice_key)
    key_table.after_refresh[ALICE_KEY] = RemoteKey(ALICE_KEY, ALICE, public_pem(bob_key))

    # When: a request signed with the new key arrives
    result = verify(signed_post(bob_key, now), key_table, now)

    # Then
    assert result.ok, result.reason
    assert key_table.calls == [(ALICE_KEY, False), (ALICE_KEY, True)]


def test_verify_request__refresh_unavailable_is_503(alice_key, bob_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    key_table.after_refresh[ALICE_KEY] = None

    result = verify(signed_post(bob_key, now), key_table, now)

    assert (result.ok, result.status) == (False, 503)


def test_verify_request__refresh_finds_actor_gone(alice_key, bob_key, key_table, now) -> None:
    key_table.add(ALICE_KEY, alice_key)
    key_table.after_refresh[ALICE_KEY] = KeyGone(410)

    result = verify(signed_post(bob_key, now), key_table, now)

    assert (result.reason, result.gone_status) == ("key gone", 410)


def test_verify_request__fetched_key_for_another_id(alice_key, key_table, now) -> None:
    key_table.keys[ALICE_KEY] = RemoteKey(ALICE + "#other-key", ALICE, public_pem(alice_key))

    result = verify(signed_post(alice_key, now), key_table, now)

    assert (result.ok, result.status) == (False, 401)
    assert "not the signing key" in result.reason


def test_verify_request__unreadable_fetched_key(alice_key, key_table, now) -> None:
    key_table.keys[ALICE_KEY] = RemoteKey(ALICE_KEY, ALICE, "-----BEGIN PUBLIC KEY-----\nx\n")

    result = verify(signed_post(alice_key, now), key_table, now)

    assert (result.status, result.reason) == (401, "the signer's public key is unreadable")


def test_verify_request__acct_key_id_is_not_fetched(alice_key, key_table, now) -> None:
    headers = sign_request("POST", INBOX, {}, BODY, "acct:alice@remote.example", alice_key, now)

    result = verify(headers, key_table, now)

    assert (result.ok, result.status) == (False, 401)
    assert key_table.calls == []


# --- helpers ---------------------------------------------------------------------------------


def _pkcs1_sign(private_key, text: str) -> bytes:
    return private_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())


def _rfc9421_headers(private_key, inner: str, *, content_digest=None, sign=True):
    """A POST of BODY to INBOX with `sig1=<inner>`, signed over the RFC 9421 base."""
    headers = {
        "Content-Type": "application/activity+json",
        "Content-Digest": content_digest or f"sha-256=:{b64_sha256(BODY)}:",
        "Signature-Input": f"sig1={inner}",
        "Signature": "sig1=:AAAA:",
    }
    if sign:
        base = render_signature_base("POST", INBOX, headers, headers["Signature-Input"])
        signature = base64.b64encode(_pkcs1_sign(private_key, base)).decode()
        headers["Signature"] = f"sig1=:{signature}:"
    return headers
