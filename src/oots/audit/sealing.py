"""Encryption of the personal data kept in audit entries (AES-256-GCM, key from config)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from oots.errors import SecurityError

__all__ = ["decrypt_personal", "digest", "encrypt_personal"]

_VERSION = b"\x01"


def encrypt_personal(key: bytes, data: Mapping[str, Any], *, associated: bytes = b"") -> bytes:
    """Encrypt a JSON-able mapping of personal data; ``associated`` binds it to its entry."""
    nonce = os.urandom(12)
    plain = json.dumps(dict(data), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plain, associated)


def decrypt_personal(key: bytes, blob: bytes, *, associated: bytes = b"") -> dict[str, Any]:
    if blob[:1] != _VERSION or len(blob) < 29:
        raise SecurityError("the personal data of an audit entry is not in a known format")
    try:
        plain = AESGCM(key).decrypt(blob[1:13], blob[13:], associated)
    except InvalidTag:
        raise SecurityError("the personal data of an audit entry cannot be decrypted with this key") from None
    value = json.loads(plain)
    if not isinstance(value, dict):
        raise SecurityError("the personal data of an audit entry is not a mapping")
    return value


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()
