"""OpenSSL as an independent oracle: it verifies our answer signatures and our chains, and the Commission's."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cs.cs_helpers import Capture
from oots.cs.jades import DIGEST_HEADER, SIGNATURE_HEADER
from oots.cs.keys import CsPki

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed"),
]


def _openssl_verifies(headers: dict[str, str], workdir: Path) -> tuple[bool, list[x509.Certificate]]:
    protected, _, signature = headers[SIGNATURE_HEADER].split(".")
    header = json.loads(base64.urlsafe_b64decode(protected + "=="))
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
    raw = base64.urlsafe_b64decode(signature + "==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    (workdir / "input").write_bytes(f"{protected}.{DIGEST_HEADER}: {headers[DIGEST_HEADER]}".encode())
    (workdir / "sig").write_bytes(der)
    (workdir / "pub.pem").write_bytes(
        chain[0].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    result = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(workdir / "pub.pem"),
            "-signature",
            str(workdir / "sig"),
            str(workdir / "input"),
        ],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0, chain


def _openssl_chain_ok(
    chain: list[x509.Certificate], root: x509.Certificate, workdir: Path, at: int | None = None
) -> bool:
    (workdir / "leaf.pem").write_bytes(chain[0].public_bytes(Encoding.PEM))
    (workdir / "untrusted.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain[1:]))
    (workdir / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    cmd = ["openssl", "verify", "-CAfile", str(workdir / "root.pem"), "-untrusted", str(workdir / "untrusted.pem")]
    if at is not None:
        cmd += ["-attime", str(at)]
    result = subprocess.run([*cmd, str(workdir / "leaf.pem")], capture_output=True, check=False)
    return result.returncode == 0


def test_openssl_verifies_our_signatures_and_chain(pki: CsPki, tmp_path: Path) -> None:
    headers = pki.signer().headers(b"<answer/>")
    ok, chain = _openssl_verifies(headers, tmp_path)
    assert ok
    assert _openssl_chain_ok(chain, pki.root, tmp_path)
    tampered = {**headers, DIGEST_HEADER: headers[DIGEST_HEADER][:-3] + "AA="}
    assert not _openssl_verifies(tampered, tmp_path)[0]


def test_openssl_agrees_on_the_commission_captures(captures: list[Capture], spec_dir: Path, tmp_path: Path) -> None:
    root = x509.load_pem_x509_certificate((spec_dir / "common-services" / "ec-cs-acc-trust.pem").read_bytes())
    other = x509.load_pem_x509_certificate((spec_dir / "common-services" / "ec-cs-prod-trust.pem").read_bytes())
    for capture in captures:
        ok, chain = _openssl_verifies(capture.headers, tmp_path)
        assert ok, capture.name
        assert _openssl_chain_ok(chain, root, tmp_path, at=1785542400)  # 2026-08-01
        assert not _openssl_chain_ok(chain, other, tmp_path, at=1785542400)
