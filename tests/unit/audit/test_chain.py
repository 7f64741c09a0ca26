from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from oots.audit.chain import GENESIS, EntryFields, Head, head_mac, seal, verify_chain, verify_head
from oots.audit.sealing import decrypt_personal, digest, encrypt_personal
from oots.errors import SecurityError

KEY = b"k" * 32
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def build(n: int) -> list[tuple[EntryFields, str]]:
    out: list[tuple[EntryFields, str]] = []
    previous = GENESIS
    for i in range(1, n + 1):
        fields = EntryFields(
            seq=i,
            recorded_at=T0 + timedelta(seconds=i),
            node="be",
            side="provider",
            event="request_received",
            exchange_id=f"x{i}",
            message_ids=(f"m{i}@be",),
            details={"code": None, "n": i},
            personal_digest=digest(b"cipher%d" % i),
        )
        sealed = seal(KEY, previous, fields)
        out.append((fields, sealed))
        previous = sealed
    return out


def test_an_intact_chain_verifies() -> None:
    chain = build(5)
    assert verify_chain(KEY, chain, head=(5, chain[-1][1])) == []


def test_an_edited_entry_is_found() -> None:
    chain = build(5)
    fields, sealed = chain[2]
    chain[2] = (dataclasses.replace(fields, outcome="accepted"), sealed)
    breaks = verify_chain(KEY, chain)
    assert [b.seq for b in breaks] == [3]


def test_a_deleted_entry_is_found() -> None:
    chain = build(5)
    del chain[1]
    breaks = verify_chain(KEY, chain)
    assert breaks[0].seq == 3
    assert "missing" in breaks[0].reason


def test_reordered_entries_are_found() -> None:
    chain = build(5)
    chain[1], chain[2] = chain[2], chain[1]
    assert {b.seq for b in verify_chain(KEY, chain)} >= {2, 3}


def test_a_cut_tail_is_found_through_the_head() -> None:
    chain = build(5)
    breaks = verify_chain(KEY, chain[:3], head=(5, chain[-1][1]))
    assert breaks[-1].reason.startswith("the journal's head is entry 5")


def test_verification_from_an_anchor_after_a_purge() -> None:
    chain = build(6)
    anchor_seq, anchor_seal = chain[2][0].seq, chain[2][1]
    assert verify_chain(KEY, chain[3:], anchor_seq=anchor_seq, anchor_seal=anchor_seal) == []
    assert verify_chain(KEY, chain[3:]) != []


def test_another_key_cannot_reseal() -> None:
    chain = build(3)
    assert verify_chain(b"x" * 32, chain) != []


def test_personal_data_round_trip_and_binding() -> None:
    key = b"p" * 32
    blob = encrypt_personal(key, {"family_name": "Ηλίας"}, associated=b"entry-1")
    assert decrypt_personal(key, blob, associated=b"entry-1") == {"family_name": "Ηλίας"}
    assert "Ηλίας".encode() not in blob
    with pytest.raises(SecurityError):
        decrypt_personal(key, blob, associated=b"entry-2")
    with pytest.raises(SecurityError):
        decrypt_personal(b"q" * 32, blob, associated=b"entry-1")


def test_seal_version_2_covers_the_subject_key_and_version_1_does_not() -> None:
    fields = build(1)[0][0]
    keyed = dataclasses.replace(fields, subject_key="a" * 64)
    assert seal(KEY, GENESIS, keyed) != seal(KEY, GENESIS, dataclasses.replace(keyed, subject_key="b" * 64))
    old = dataclasses.replace(keyed, version=1)
    assert seal(KEY, GENESIS, old) == seal(KEY, GENESIS, dataclasses.replace(old, subject_key="b" * 64))
    assert seal(KEY, GENESIS, old) != seal(KEY, GENESIS, keyed)  # one version cannot pass for the other
    breaks = verify_chain(KEY, [(dataclasses.replace(keyed, version=7), seal(KEY, GENESIS, keyed))])
    assert [b.reason for b in breaks] == ["unknown seal version 7: the entry was changed"]


def test_the_head_is_keyed() -> None:
    chain = build(5)
    head = Head(5, chain[-1][1], 0, GENESIS, head_mac(KEY, 5, chain[-1][1], 0, GENESIS))
    assert verify_head(KEY, head) is None
    assert verify_head(KEY, dataclasses.replace(head, mac=None)) is None  # unkeyed: the journal decides
    moved_back = dataclasses.replace(head, seq=3, seal=chain[2][1])
    assert verify_head(KEY, moved_back) is not None
    re_anchored = dataclasses.replace(head, anchor_seq=2, anchor_seal=chain[1][1])
    assert verify_head(KEY, re_anchored) is not None
    assert verify_head(b"x" * 32, head) is not None
