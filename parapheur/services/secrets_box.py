"""Short-lived encryption of a secret handed to a job (a batch's signing PIN), so that it never sits in
Redis in clear. The key derives from the instance's SECRET_KEY; the box expires after ``ttl`` seconds."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _key(secret_key: str) -> bytes:
    return hashlib.sha256(b"parapheur-job-secret:" + secret_key.encode()).digest()


def seal(secret_key: str, value: str, ttl: int = 3600) -> str:
    nonce = os.urandom(12)
    payload = json.dumps({"v": value, "exp": int(time.time()) + ttl}).encode()
    return base64.urlsafe_b64encode(nonce + AESGCM(_key(secret_key)).encrypt(nonce, payload, b"job")).decode()


def open_(secret_key: str, box: str) -> str | None:
    """The value, or None if the box is damaged, from another instance, or expired."""
    try:
        raw = base64.urlsafe_b64decode(box.encode())
        payload = json.loads(AESGCM(_key(secret_key)).decrypt(raw[:12], raw[12:], b"job"))
    except Exception:  # noqa: BLE001 - any failure means "cannot use it"
        return None
    return payload["v"] if payload["exp"] >= time.time() else None
