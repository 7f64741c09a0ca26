"""``oots as4``: pack one AS4 message into a file, and inspect (verify, decrypt) one."""

from __future__ import annotations

import json
import mimetypes
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oots.errors import ConfigError, OotsError, SecurityError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    from oots.as4 import keys, model
    from oots.as4.wss import SecurityReport

app = typer.Typer(help="Pack and inspect eDelivery AS4 messages.", no_args_is_help=True)

#: ``oots.as4.profile.ACTION_EXECUTE_QUERY_REQUEST``, spelt out so that ``oots`` loads the AS4 package
#: (and cryptography) only when an ``oots as4`` command runs; a test checks that the two agree.
ACTION_EXECUTE_QUERY_REQUEST = "ExecuteQueryRequest"


def _party(value: str, default_type: str) -> model.PartyId:
    """``TYPE::VALUE`` or ``VALUE`` (with ``default_type``)."""
    from oots.as4 import model

    if "::" in value:
        type_, _, rest = value.partition("::")
        if not type_ or not rest:
            raise ConfigError(f"party id {value!r}: expected TYPE::VALUE or VALUE")
        return model.PartyId(rest, type_)
    return model.PartyId(value, default_type)


def _payload(spec: str, index: int) -> model.Payload:
    from oots.as4 import model, profile

    path_text, mime_type = spec, ""
    head, sep, tail = spec.rpartition(":")
    if sep and "/" in tail and head:
        path_text, mime_type = head, tail
    path = Path(path_text)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read payload {path}: {exc.strerror}") from None
    if not mime_type:
        guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        mime_type = profile.REGREP_MIME_TYPE if index == 0 and guessed.endswith("xml") else guessed
    return model.Payload(f"{profile.new_uuid(os.urandom)}@oots", mime_type, data)


@app.command("pack")
def pack(  # noqa: PLR0917 - one parameter per command-line option
    sign_key: Annotated[Path, typer.Option("--sign-key", help="PEM private key that signs.")],
    sign_cert: Annotated[Path, typer.Option("--sign-cert", help="PEM certificate of the signing key.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the raw message.")],
    payload: Annotated[
        list[str], typer.Option("--payload", help="FILE[:MIME], repeatable; the first is the RegRep document.")
    ],
    encrypt_cert: Annotated[
        Path | None, typer.Option("--encrypt-cert", help="PEM certificate of the receiver (encrypts the payloads).")
    ] = None,
    from_party: Annotated[str, typer.Option(help="Sending access point, [TYPE::]VALUE.")] = "oots-sender",
    to_party: Annotated[str, typer.Option(help="Receiving access point, [TYPE::]VALUE.")] = "oots-receiver",
    original_sender: Annotated[str, typer.Option(help="C1, [TYPE::]VALUE.")] = "C1",
    final_recipient: Annotated[str, typer.Option(help="C4, [TYPE::]VALUE.")] = "C4",
    action: Annotated[str, typer.Option(help="ebMS Action.")] = ACTION_EXECUTE_QUERY_REQUEST,
    no_compress: Annotated[bool, typer.Option("--no-compress", help="Do not gzip the payloads.")] = False,
) -> int:
    """Write one signed (and encrypted) OOTS AS4 UserMessage: MIME headers, a blank line, the body."""
    from oots.as4 import keys, message, profile

    unregistered = profile.PARTY_ID_TYPE
    signer = keys.load_key_pair(sign_key, sign_cert)
    recipient = keys.load_certificate(encrypt_cert) if encrypt_cert is not None else None
    payloads = [_payload(spec, i) for i, spec in enumerate(payload)]
    um = profile.user_message(
        message_id=profile.new_message_id(os.urandom, "oots"),
        timestamp=datetime.now(UTC),
        from_party=_party(from_party, unregistered),
        to_party=_party(to_party, unregistered),
        original_sender=_party(original_sender, unregistered),
        final_recipient=_party(final_recipient, unregistered),
        conversation_id=profile.new_uuid(os.urandom),
        action=action,
        exchange_id=profile.new_uuid(os.urandom),
        specification_id=profile.SPECIFICATION_ID_V2,
    )
    packed = message.pack(um, payloads, sign=signer, encrypt_for=recipient, random=os.urandom, compress=not no_compress)
    try:
        out.write_bytes(packed.to_file())
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(f"{out}: message {packed.message_id}, {len(payloads)} payload(s), {len(packed.body):,} bytes")
    return 0


def _matching_certificate(key: rsa.RSAPrivateKey, certs: list[x509.Certificate]) -> x509.Certificate | None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    wanted = key.public_key().public_numbers()
    for cert in certs:
        public = cert.public_key()
        if isinstance(public, rsa.RSAPublicKey) and public.public_numbers() == wanted:
            return cert
    return None


def _decryption_pair(key_path: Path, cert_path: Path | None, content_type: str, body: bytes) -> keys.KeyPair:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from oots.as4 import keys, message

    if cert_path is not None:
        return keys.load_key_pair(key_path, cert_path)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read {key_path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key_path} is not a usable PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{key_path} is not an RSA key")
    cert = _matching_certificate(key, message.certificates_in(content_type, body))
    if cert is None:
        raise SecurityError("the message is not encrypted for this decryption key", code="EBMS:0102")
    return keys.KeyPair(key, cert)


def _header(msg: model.UserMessage | model.SignalMessage) -> dict[str, Any]:
    from oots.as4 import model

    info = msg.message_info
    out: dict[str, Any] = {
        "kind": "UserMessage" if isinstance(msg, model.UserMessage) else "SignalMessage",
        "message_id": info.message_id,
        "timestamp": info.timestamp.isoformat(),
        "ref_to_message_id": info.ref_to_message_id,
    }
    if isinstance(msg, model.UserMessage):
        pi, ci = msg.party_info, msg.collaboration_info
        out |= {
            "from": {
                "party_id": pi.from_party.party_id.value,
                "type": pi.from_party.party_id.type,
                "role": pi.from_party.role,
            },
            "to": {"party_id": pi.to_party.party_id.value, "type": pi.to_party.party_id.type, "role": pi.to_party.role},
            "service": {"value": ci.service.value, "type": ci.service.type},
            "action": ci.action,
            "conversation_id": ci.conversation_id,
            "properties": [{"name": p.name, "value": p.value, "type": p.type} for p in msg.message_properties],
        }
    else:
        out["receipt_references"] = None if msg.receipt is None else [r.uri for r in msg.receipt.references]
        out["errors"] = [
            {"code": e.error_code, "short": e.short_description, "detail": e.error_detail} for e in msg.errors
        ]
    return out


def _parts(msg: model.UserMessage | model.SignalMessage, report: SecurityReport) -> list[dict[str, Any]]:
    from oots.as4 import model

    infos = {p.content_id: p for p in msg.payload_info} if isinstance(msg, model.UserMessage) else {}
    rows = []
    for cid, (media, data) in report.parts.items():
        info = infos.get(cid)
        rows.append(
            {
                "content_id": cid,
                "media_type": media,
                "bytes": len(data),
                "encrypted": cid in report.encrypted,
                "decrypted": cid in report.encrypted and cid not in report.undecrypted,
                "part_properties": {} if info is None else {p.name: p.value for p in info.properties},
            }
        )
    return rows


@app.command("inspect")
def inspect(
    file: Annotated[Path, typer.Argument(help="A raw AS4 message (MIME headers, blank line, body).")],
    trust: Annotated[
        list[Path] | None, typer.Option("--trust", help="PEM trust anchor(s) for the signer's certificate.")
    ] = None,
    decrypt_key: Annotated[Path | None, typer.Option("--decrypt-key", help="PEM private key to decrypt with.")] = None,
    decrypt_cert: Annotated[
        Path | None, typer.Option("--decrypt-cert", help="Its certificate (else found in the message).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> int:
    """Report the header, the parts and each signature reference; exit 0 when the signature (and the
    decryption, when a key is given) holds, 1 otherwise."""
    from oots.as4 import keys, message, mime
    from oots.as4.trust import TrustStore

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    headers, body = mime.read_message_file(data)
    content_type = headers["content-type"]
    pair = _decryption_pair(decrypt_key, decrypt_cert, content_type, body) if decrypt_key is not None else None
    report, msg = message.inspect(content_type, body, decryption=pair)
    trust_result: str | None = None
    if trust:
        anchors = [c for path in trust for c in keys.load_certificates(path.read_bytes())]
        try:
            if report.signer is None:
                raise ConfigError("no signer")
            TrustStore.of(anchors).verify(report.signer, at=datetime.now(UTC))
            trust_result = "trusted"
        except OotsError as exc:
            trust_result = f"not trusted: {exc.message}"
    checks_hold = all(c.status == "ok" or (c.status == "encrypted" and pair is None) for c in report.checks)
    holds = report.signature_valid and checks_hold and not report.problems and trust_result in (None, "trusted")
    result = {
        "file": str(file),
        "header": _header(msg),
        "parts": _parts(msg, report),
        "signature": {
            "signer": None if report.signer is None else report.signer.subject.rfc4514_string(),
            "signature_value": "valid" if report.signature_valid else "INVALID",
            "references": [{"uri": c.uri, "status": c.status, "detail": c.detail} for c in report.checks],
            "problems": [{"code": code, "detail": text} for code, text in report.problems],
            "trust": trust_result,
        },
        "holds": holds,
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0 if holds else 1


def _print(result: dict[str, Any]) -> None:
    header = result["header"]
    typer.echo(f"{result['file']}: {header['kind']} {header['message_id']} at {header['timestamp']}")
    for key in ("ref_to_message_id", "action", "conversation_id"):
        if header.get(key):
            typer.echo(f"  {key}: {header[key]}")
    if "from" in header:
        typer.echo(f"  from: {header['from']['party_id']} ({header['from']['type']})")
        typer.echo(f"  to:   {header['to']['party_id']} ({header['to']['type']})")
        typer.echo(f"  service: {header['service']['value']} ({header['service']['type']})")
        for prop in header["properties"]:
            typer.echo(f"  property {prop['name']} = {prop['value']}" + (f" ({prop['type']})" if prop["type"] else ""))
    for part in result["parts"]:
        state = "decrypted" if part["decrypted"] else ("encrypted" if part["encrypted"] else "clear")
        typer.echo(f"  part {part['content_id']}: {part['media_type']}, {part['bytes']:,} bytes, {state}")
    sig = result["signature"]
    typer.echo(f"  signer: {sig['signer']}; signature value {sig['signature_value']}")
    for ref in sig["references"]:
        typer.echo(f"  reference {ref['uri']}: {ref['status']}" + (f" ({ref['detail']})" if ref["detail"] else ""))
    for problem in sig["problems"]:
        typer.echo(f"  problem {problem['code']}: {problem['detail']}")
    if sig["trust"] is not None:
        typer.echo(f"  certificate: {sig['trust']}")
    typer.echo("  result: " + ("the signature holds" if result["holds"] else "the signature does NOT hold"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="as4")
