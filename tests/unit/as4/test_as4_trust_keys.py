from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from as4_helpers import (
    NOW,
    Pki,
    pki_fixture,  # noqa: F401 - fixtures
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from oots.as4 import keys
from oots.as4.trust import TrustStore
from oots.errors import ConfigError, SecurityError


def test_chain_to_anchor(pki: Pki) -> None:
    pki.trust.verify(pki.sender_sign.certificate, at=NOW)


@pytest.mark.parametrize("when", [NOW - timedelta(days=30), NOW + timedelta(days=3000)])
def test_outside_validity(pki: Pki, when: object) -> None:
    with pytest.raises(SecurityError) as info:
        pki.trust.verify(pki.sender_sign.certificate, at=when)  # type: ignore[arg-type]
    assert info.value.code == "EBMS:0101"


def test_other_ca_and_empty_store(pki: Pki) -> None:
    with pytest.raises(SecurityError, match="not trusted"):
        pki.trust.verify(pki.stranger_sign.certificate, at=NOW)
    with pytest.raises(SecurityError, match="no trust anchors"):
        TrustStore(()).verify(pki.sender_sign.certificate, at=NOW)


def test_a_leaf_is_no_ca(pki: Pki) -> None:
    store = TrustStore.of([pki.receiver_sign.certificate])
    with pytest.raises(SecurityError):
        store.verify(pki.sender_sign.certificate, at=NOW)


def test_dev_pki(tmp_path: Path) -> None:
    made = keys.init_dev_pki(tmp_path, ["be-ap", "fr-ap"], now=NOW)
    assert set(made.access_points) == {"be-ap", "fr-ap"}
    for paths in made.access_points.values():
        for name, path in paths.items():
            assert path.is_file()
            if name.endswith("_key"):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pair = keys.load_key_pair(made.access_points["be-ap"]["sign_key"], made.access_points["be-ap"]["sign_cert"])
    store = TrustStore.of([keys.load_certificate(made.ca_certificate)])
    store.verify(pair.certificate, at=NOW + timedelta(days=1))
    assert len(pair.chain) == 1
    # A second run keeps the CA and adds an access point.
    again = keys.init_dev_pki(tmp_path, ["de-ap"], now=NOW)
    assert again.ca_certificate.read_bytes() == made.ca_certificate.read_bytes()


def test_bad_names_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        keys.init_dev_pki(tmp_path, ["../evil"], now=NOW)
    (tmp_path / "x.pem").write_bytes(b"nonsense")
    with pytest.raises(ConfigError):
        keys.load_key_pair(tmp_path / "x.pem", tmp_path / "x.pem")
    with pytest.raises(ConfigError):
        keys.load_certificate(tmp_path / "missing.pem")


def test_pkcs12(pki: Pki, tmp_path: Path) -> None:
    pair = pki.sender_sign
    data = pkcs12.serialize_key_and_certificates(
        b"ap", pair.private_key, pair.certificate, [pki.ca.certificate],
        serialization.BestAvailableEncryption(b"secret"),
    )  # fmt: skip
    (tmp_path / "ap.p12").write_bytes(data)
    loaded = keys.load_pkcs12(tmp_path / "ap.p12", password=b"secret")
    assert loaded.certificate == pair.certificate
    assert loaded.chain == (pki.ca.certificate,)
    with pytest.raises(ConfigError):
        keys.load_pkcs12(tmp_path / "ap.p12", password=b"wrong")


def test_key_must_match_certificate(pki: Pki) -> None:
    with pytest.raises(SecurityError):
        keys.KeyPair(pki.sender_sign.private_key, pki.receiver_sign.certificate)


def test_cached_chain_still_honours_the_ca_validity(pki: Pki) -> None:
    short_ca = keys.make_ca("short CA", now=NOW - timedelta(days=1), days=3)
    leaf = keys.issue(short_ca, "long leaf", now=NOW - timedelta(days=1), purpose="sign", days=100)
    store = TrustStore.of([short_ca.certificate])
    store.verify(leaf.certificate, at=NOW)
    store.verify(leaf.certificate, at=NOW + timedelta(hours=1))  # from the cache
    with pytest.raises(SecurityError):
        store.verify(leaf.certificate, at=NOW + timedelta(days=10))  # the CA has expired by then
