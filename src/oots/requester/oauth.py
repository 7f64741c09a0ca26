"""OAuth2 client credentials for the portal API (RFC 6749 §4.4): the node is the token endpoint.

A registered portal client (``[[requester.clients]]`` with ``client_secret_sha256``) posts
``grant_type=client_credentials`` to ``/api/v1/oauth/token`` with its id and secret (HTTP Basic or form
fields) and receives a short-lived bearer token, which the API accepts in ``Authorization: Bearer``
instead of the API key.

Tokens are compact JWS (RFC 7515) with ``HS256`` (HMAC-SHA256 under the node's token key): header
``{"alg": "HS256", "typ": "at+jwt"}``, claims ``iss`` (the node's base URL), ``sub`` (the client id),
``scope`` (space-separated), ``iat``, ``exp`` and ``jti``. Verification accepts exactly that header
algorithm, checks the signature in constant time, then the issuer and the expiry: a token is nothing
but what it says, signed by this node, until ``exp``.

No I/O here: :class:`TokenIssuer` takes its key and clock; :func:`token_key` reads or creates the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from oots.errors import ConfigError, SecurityError
from oots.store.files import write_once

__all__ = ["SCOPES", "Grant", "TokenIssuer", "parse_scope", "token_key"]

#: The portal API's scopes: reading exchanges and their evidence; starting and steering them.
SCOPES = ("exchanges:read", "exchanges:write")

_HEADER = {"alg": "HS256", "typ": "at+jwt"}
_MAX_TOKEN = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or len(text) > _MAX_TOKEN:
        raise SecurityError("the bearer token is malformed")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SecurityError("the bearer token is malformed") from None


def parse_scope(requested: str | None, allowed: Iterable[str]) -> frozenset[str]:
    """The scopes to grant: those requested (space-separated), all that are allowed when none is asked for.

    SecurityError (``invalid_scope``) for a scope the client is not allowed."""
    permitted = frozenset(allowed)
    if requested is None or not requested.strip():
        return permitted
    wanted = frozenset(requested.split())
    if not wanted <= permitted:
        raise SecurityError(f"scope not allowed for this client: {' '.join(sorted(wanted - permitted))}")
    return wanted


@dataclass(frozen=True)
class Grant:
    """What a valid token grants: who, which scopes, until when (Unix seconds)."""

    client_id: str
    scopes: frozenset[str]
    expires_at: int


class TokenIssuer:
    """Issues and verifies the node's bearer tokens."""

    def __init__(
        self, key: bytes, *, issuer: str, lifetime_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        if len(key) < 32:
            raise ConfigError("the token key must be at least 32 bytes")
        self._key = key
        self.issuer = issuer
        self.lifetime = lifetime_seconds
        self.clock = clock

    def _sign(self, signing_input: bytes) -> bytes:
        return hmac.new(self._key, signing_input, hashlib.sha256).digest()

    def issue(self, client_id: str, scopes: Iterable[str]) -> tuple[str, int]:
        """A new token for ``client_id`` and its lifetime in seconds."""
        now = int(self.clock())
        claims = {
            "iss": self.issuer,
            "sub": client_id,
            "scope": " ".join(sorted(scopes)),
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        head = _b64(json.dumps(_HEADER, separators=(",", ":"), sort_keys=True).encode())
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signing_input = f"{head}.{body}".encode("ascii")
        return f"{head}.{body}.{_b64(self._sign(signing_input))}", self.lifetime

    def verify(self, token: str) -> Grant:
        """The grant of a token of this node; SecurityError when it is malformed, forged or expired."""
        parts = token.split(".")
        if len(parts) != 3 or len(token) > _MAX_TOKEN:
            raise SecurityError("the bearer token is malformed")
        head, body, signature = parts
        if len(head) > 200:  # ours is 36 characters; never parse a deep structure from outside
            raise SecurityError("the bearer token is not one of this node's")
        try:
            header = json.loads(_unb64(head))
        except ValueError:
            raise SecurityError("the bearer token is malformed") from None
        if header != _HEADER:  # exactly our algorithm: never "none", never another key type
            raise SecurityError("the bearer token is not one of this node's")
        if not hmac.compare_digest(_unb64(signature), self._sign(f"{head}.{body}".encode("ascii"))):
            raise SecurityError("the bearer token's signature does not verify")
        try:
            claims = json.loads(_unb64(body))
            client_id, scope, expires = str(claims["sub"]), str(claims["scope"]), int(claims["exp"])
            issuer = claims["iss"]
        except (ValueError, KeyError, TypeError):
            raise SecurityError("the bearer token is malformed") from None
        if issuer != self.issuer:
            raise SecurityError("the bearer token was issued for another node")
        if expires <= int(self.clock()):
            raise SecurityError("the bearer token has expired")
        return Grant(client_id, frozenset(scope.split()), expires)


def token_key(configured: str | None, data_dir: Path) -> bytes:
    """The token key: ``requester.token_key`` (hex), or generated once into ``<data_dir>/requester-token.key``."""
    if configured:
        try:
            key = bytes.fromhex(configured.strip())
        except ValueError:
            raise ConfigError("requester.token_key must be hexadecimal (64 characters)") from None
        if len(key) < 32:
            raise ConfigError("requester.token_key must be at least 32 bytes (64 hexadecimal characters)")
        return key
    # generated once; the node's processes that start together all read the one that was written first
    path = data_dir / "requester-token.key"
    stored = write_once(path, secrets.token_hex(32)).strip()
    if not stored:
        raise ConfigError(f"{path} is empty: remove it and a new token key is generated at the next start")
    return token_key(stored, data_dir)
