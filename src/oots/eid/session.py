"""Sealed cookies: the login flow and the logged-in identity, encrypted and authenticated.

A cookie value is a Fernet token (AES-128-CBC + HMAC-SHA256, with its creation time) over JSON, with
a key derived per purpose from the node's session secret, so a flow cookie can never be replayed as a
session cookie. Tokens older than their lifetime are refused. Nothing in a cookie is readable or
changeable by the browser.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from oots.eid.identity import Address, Gender, Identity, LegalPerson, LevelOfAssurance, NaturalPerson, Subject

__all__ = ["Sealer", "identity_from_json", "identity_to_json"]


class Sealer:
    """Encrypts and authenticates small JSON values for one purpose (``"flow"``, ``"session"``)."""

    def __init__(self, secret: bytes, purpose: str, *, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"oots.eid", info=purpose.encode()).derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._clock = clock

    def seal(self, value: Any) -> str:
        data = json.dumps(value, separators=(",", ":")).encode("utf-8")
        return self._fernet.encrypt_at_time(data, int(self._clock())).decode("ascii")

    def open(self, token: str | None, max_age: float) -> Any | None:
        """The sealed value, or None when absent, forged, or older than ``max_age`` seconds."""
        if not token:
            return None
        try:
            data = self._fernet.decrypt_at_time(token.encode("ascii"), int(max_age), int(self._clock()))
        except (InvalidToken, UnicodeEncodeError, ValueError):
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None


def _subject_to_json(subject: Subject) -> dict[str, Any]:
    if isinstance(subject, NaturalPerson):
        out: dict[str, Any] = {"type": "natural"}
        for name in NaturalPerson.__slots__:
            value = getattr(subject, name)
            if isinstance(value, dt.date):
                value = value.isoformat()
            elif isinstance(value, Gender):
                value = value.value
            elif isinstance(value, Address):
                value = {n: getattr(value, n) for n in Address.__slots__}
            out[name] = value
        return out
    out = {"type": "legal"}
    for name in LegalPerson.__slots__:
        value = getattr(subject, name)
        if isinstance(value, Address):
            value = {n: getattr(value, n) for n in Address.__slots__}
        out[name] = value
    return out


def _subject_from_json(data: dict[str, Any]) -> Subject:
    kind = data.pop("type")
    address_key = "current_address" if kind == "natural" else "registered_address"
    if data.get(address_key) is not None:
        data[address_key] = Address(**data[address_key])
    if kind == "natural":
        data["date_of_birth"] = dt.date.fromisoformat(data["date_of_birth"])
        if data.get("gender") is not None:
            data["gender"] = Gender(data["gender"])
        return NaturalPerson(**data)
    return LegalPerson(**data)


def identity_to_json(identity: Identity) -> dict[str, Any]:
    return {
        "subject": _subject_to_json(identity.subject),
        "representative": None if identity.representative is None else _subject_to_json(identity.representative),
        "level": identity.level.value,
        "issuer": identity.issuer,
        "protocol": identity.protocol,
        "authenticated_at": identity.authenticated_at.isoformat(),
        "session_index": identity.session_index,
    }


def identity_from_json(data: dict[str, Any]) -> Identity:
    rep = data.get("representative")
    return Identity(
        subject=_subject_from_json(dict(data["subject"])),
        representative=None if rep is None else _subject_from_json(dict(rep)),
        level=LevelOfAssurance(data["level"]),
        issuer=data["issuer"],
        protocol=data["protocol"],
        authenticated_at=dt.datetime.fromisoformat(data["authenticated_at"]),
        session_index=data.get("session_index"),
    )
