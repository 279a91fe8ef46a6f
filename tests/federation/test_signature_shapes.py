"""Inbound requests shaped as each server sends them (FEDERATION.md §4.4, §11), and known test
vectors.

Header names, order, casing and signed sets are copied from each server's output. Real
captures carry foreign keys, so each signature is made at run time with a test key, over a
signing string written out here by hand (not built by our signer), then verified.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from fedipress.federation.signatures import RemoteKey, verify_request

# 2026-11-28 12:00:00 UTC, two seconds after every request below was signed.
NOW_TEXT = "Sat, 28 Nov 2026 11:59:58 GMT"


def _rsa_sha256(key: RSAPrivateKey, signing_string: str) -> str:
    """RSASSA-PKCS1-v1_5 over SHA-256, base64: what every one of these servers signs with."""
    raw = key.sign(signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def _verify(method, path, headers, body, key_table, now, host="blog.example"):
    return asyncio.run(
        verify_request(method, path, headers, body, public_host=host, fetch_key=key_table, now=now)
    )


def test_verify_request__mastodon_shape(alice_key, key_table, now) -> None:
    # Given: Mastodon 4.3 delivering a Follow (app/lib/request.rb, delivery_worker.rb)
    key_table.add("https://mastodon.example/users/alice#main-key", alice_key)
    body = (
        b'{"@context":"https://www.w3.org/ns/activitystreams",'
        b'"id":"https://mastodon.example/7a1b0c2e-5d7f-4f0e-9a51-2c4d9e0f1a2b","type":"Follow",'
        b'"actor":"https://mastodon.example/users/alice","object":"https://blog.example/ap/actor"}'
    )
    signature = _rsa_sha256(
        alice_key,
        "(request-target): post /ap/inbox\n"
        "host: blog.example\n"
        f"date: {NOW_TEXT}\n"
        "digest: SHA-256=MUak2OY/ULo38dF8ymD6+AIIrvwXXdWwVdy9F3JPY5I=\n"
        "content-type: application/activity+json",
    )
    headers = {
        "Host": "blog.example",
        "User-Agent": "Mastodon/4.3.2 (http.rb/5.2.0; +https://mastodon.example/)",
        "Date": NOW_TEXT,
        "Accept-Encoding": "gzip",
        "Digest": "SHA-256=MUak2OY/ULo38dF8ymD6+AIIrvwXXdWwVdy9F3JPY5I=",
        "Content-Type": "application/activity+json",
        "Signature": (
            'keyId="https://mastodon.example/users/alice#main-key",algorithm="rsa-sha256",'
            'headers="(request-target) host date digest content-type",'
            f'signature="{signature}"'
        ),
    }

    # When
    result = _verify("POST", "/ap/inbox", headers, body, key_table, now)

    # Then
    assert result.ok, result.reason
    assert (result.scheme, result.owner) == ("cavage", "https://mastodon.example/users/alice")


def test_verify_request__gotosocial_shape(bob_key, key_table, now) -> None:
    # Given: GoToSocial signs hs2019 with a `/main-key` key id and no content-type
    key_table.add(
        "https://gts.example/users/bob/main-key", bob_key, owner="https://gts.example/users/bob"
    )
    body = (
        b'{"@context":"https://www.w3.org/ns/activitystreams",'
        b'"id":"https://gts.example/users/bob/liked/01JDXQ4M5","type":"Like",'
        b'"actor":"https://gts.example/users/bob","object":"https://blog.example/ap/posts/hello"}'
    )
    signature = _rsa_sha256(
        bob_key,
        "(request-target): post /ap/inbox\n"
        "host: blog.example\n"
        f"date: {NOW_TEXT}\n"
        "digest: SHA-256=2EyyPKJh5+vJZtYqI3NnJSe0NK/nUWyZLqBOwrXw1cY=",
    )
    headers = {
        "Host": "blog.example",
        "Date": NOW_TEXT,
        "Digest": "SHA-256=2EyyPKJh5+vJZtYqI3NnJSe0NK/nUWyZLqBOwrXw1cY=",
        "Content-Type": "application/activity+json",
        "User-Agent": "gotosocial/0.17.3 (+https://gts.example)",
        "Signature": (
            'keyId="https://gts.example/users/bob/main-key",algorithm="hs2019",'
            'headers="(request-target) host date digest",'
            f'signature="{signature}"'
        ),
    }

    # When
    result = _verify("POST", "/ap/inbox", headers, body, key_table, now)

    # Then
    assert result.ok, result.reason
    assert result.owner == "https://gts.example/users/bob"


def test_verify_request__bovine_shape_with_lowercase_digest(alice_key, key_table, now) -> None:
    # Given: bovine (aiohttp) sends lower-case header names, as ASGI pairs, and `sha-256=`
    key_table.add("https://bovine.example/endpoints/Xk2p#main-key", alice_key)
    body = (
        b'{"@context":"https://www.w3.org/ns/activitystreams",'
        b'"id":"https://bovine.example/objects/3f2a","type":"Create",'
        b'"actor":"https://bovine.example/endpoints/Xk2p","object":{"type":"Note","content":"hi"}}'
    )
    signature = _rsa_sha256(
        alice_key,
        "(request-target): post /ap/inbox\n"
        "host: blog.example\n"
        f"date: {NOW_TEXT}\n"
        "digest: sha-256=sak3ZVL8hVCkArwKCRHkR6ibhldLtnoakY16Qq8GqPU=",
    )
    headers = [
        (b"host", b"blog.example"),
        (b"date", NOW_TEXT.encode()),
        (b"digest", b"sha-256=sak3ZVL8hVCkArwKCRHkR6ibhldLtnoakY16Qq8GqPU="),
        (b"content-type", b"application/activity+json"),
        (b"user-agent", b"bovine/0.5.9"),
        (
            b"signature",
            (
                'keyId="https://bovine.example/endpoints/Xk2p#main-key",algorithm="rsa-sha256",'
                'headers="(request-target) host date digest",'
                f'signature="{signature}"'
            ).encode(),
        ),
    ]

    # When
    result = _verify("POST", "/ap/inbox", headers, body, key_table, now)

    # Then
    assert result.ok, result.reason


def test_verify_request__fedify_rfc9421_shape(bob_key, key_table, now) -> None:
    # Given: Fedify's first knock to an unknown origin is RFC 9421 (sig/http.ts, doubleKnock)
    key_table.add("https://hollo.example/@carol#main-key", bob_key)
    body = (
        b'{"@context":"https://www.w3.org/ns/activitystreams",'
        b'"id":"https://hollo.example/#follows/0193","type":"Follow",'
        b'"actor":"https://hollo.example/@carol","object":"https://blog.example/ap/actor"}'
    )
    # The signature base of RFC 9421 §2.5, written out: one line per component, then params.
    signature = _rsa_sha256(
        bob_key,
        '"@method": POST\n'
        '"@target-uri": https://blog.example/ap/inbox\n'
        '"@authority": blog.example\n'
        '"content-digest": sha-256=:h9D0UeMZFYAeBx1XKL8BHaPhDZO+JLS9TSykla8DmH4=:\n'
        '"@signature-params": ("@method" "@target-uri" "@authority" "content-digest")'
        ';created=1795867198;keyid="https://hollo.example/@carol#main-key"'
        ';alg="rsa-v1_5-sha256"',
    )
    headers = {
        "content-type": "application/activity+json",
        "content-digest": "sha-256=:h9D0UeMZFYAeBx1XKL8BHaPhDZO+JLS9TSykla8DmH4=:",
        "signature-input": (
            'sig1=("@method" "@target-uri" "@authority" "content-digest");created=1795867198;'
            'keyid="https://hollo.example/@carol#main-key";alg="rsa-v1_5-sha256"'
        ),
        "signature": f"sig1=:{signature}:",
        "host": "blog.example",
        "user-agent": "Fedify/1.9.0 (Hollo/0.7.0; +https://hollo.example/)",
    }

    # When
    result = _verify("POST", "/ap/inbox", headers, body, key_table, now)

    # Then
    assert result.ok, result.reason
    assert (result.scheme, result.owner) == ("rfc9421", "https://hollo.example/@carol")


# draft-cavage-http-signatures-10 Appendix C: the "Test" RSA key and the C.3 request. keyId
# differs from the draft's "Test" (not a URL); it is not part of the signing string.
CAVAGE_TEST_KEY_ID = "https://example.com/keys/Test"
CAVAGE_TEST_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3
6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6
Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw
oYi+1hqp1fIekaxsyQIDAQAB
-----END PUBLIC KEY-----
"""
CAVAGE_C3_HEADERS = {
    "Host": "example.com",
    "Date": "Sun, 05 Jan 2014 21:31:40 GMT",
    "Content-Type": "application/json",
    "Digest": "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
    "Content-Length": "18",
    "Signature": (
        f'keyId="{CAVAGE_TEST_KEY_ID}",algorithm="rsa-sha256",'
        'headers="(request-target) host date content-type digest content-length",'
        'signature="vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32'
        "NfpB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR"
        '0Zkly4zKH7s1dE="'
    ),
}
CAVAGE_C3_NOW = datetime(2014, 1, 5, 21, 32, tzinfo=UTC)


def test_verify_request__cavage_appendix_c3_vector(key_table) -> None:
    key_table.keys[CAVAGE_TEST_KEY_ID] = RemoteKey(
        CAVAGE_TEST_KEY_ID, "https://example.com/keys", CAVAGE_TEST_PUBLIC_KEY
    )

    result = _verify(
        "POST", "/foo?param=value&pet=dog", CAVAGE_C3_HEADERS, b'{"hello": "world"}',
        key_table, CAVAGE_C3_NOW, host="example.com",
    )  # fmt: skip

    assert result.ok, result.reason


def test_verify_request__cavage_appendix_c3_vector_other_query(key_table) -> None:
    # The same request with another query: the signature covers the query.
    key_table.keys[CAVAGE_TEST_KEY_ID] = RemoteKey(
        CAVAGE_TEST_KEY_ID, "https://example.com/keys", CAVAGE_TEST_PUBLIC_KEY
    )

    result = _verify(
        "POST", "/foo?param=value&pet=cat", CAVAGE_C3_HEADERS, b'{"hello": "world"}',
        key_table, CAVAGE_C3_NOW, host="example.com",
    )  # fmt: skip

    assert (result.ok, result.status, result.reason) == (False, 401, "signature does not match")
