"""Signing: the same hex as the seeds' openssl recipe, fresh nonces, key-only mode."""

from __future__ import annotations

import subprocess

from fluxserve.client.signing import Signer, sign


def openssl_signature(key: str, secret: str, nonce: str) -> str:
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", key],
        input=f"{secret}{nonce}".encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    return out.strip().rsplit(" ", 1)[-1]  # "SHA2-256(stdin)= <hex>"


def test_signature_matches_openssl_recipe():
    key, secret, nonce = "my-key-123", "s3cr3t-value", "1734513807"
    expected = openssl_signature(key, secret, nonce)
    assert len(expected) == 64
    assert sign(key, secret, nonce) == expected


def test_signature_depends_on_every_part():
    base = sign("k", "s", "1")
    assert sign("k2", "s", "1") != base
    assert sign("k", "s2", "1") != base
    assert sign("k", "s", "2") != base


def test_signer_headers_in_signature_mode():
    signer = Signer("key", "secret")
    headers = signer.headers(nonce="42")
    assert headers == {"x-api-key": "key", "x-nonce": "42", "x-signature": sign("key", "secret", "42")}
    assert signer.signs


def test_nonces_strictly_increase():
    signer = Signer("key", "secret")
    nonces = [int(signer.headers()["x-nonce"]) for _ in range(50)]
    assert nonces == sorted(set(nonces))


def test_key_only_mode_sends_only_the_key():
    signer = Signer("key")
    assert signer.headers() == {"x-api-key": "key"}
    assert not signer.signs
