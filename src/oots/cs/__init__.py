"""Common Services: the Evidence Broker and the Data Service Directory, server and verifying client.

Public API:

* signatures: :class:`AnswerSigner`, :func:`verify_answer`, :class:`VerifiedAnswer`,
  :func:`digest_value`; trust: :class:`TrustStore`, :func:`commission_roots`, :func:`validate_chain`;
  local keys: :func:`generate_pki`, :func:`write_pki`, :func:`load_signer`.
"""

from __future__ import annotations

from oots.cs.jades import AnswerSigner, VerifiedAnswer, digest_value, verify_answer
from oots.cs.keys import CsPki, generate_pki, load_signer, write_pki
from oots.cs.trust import TrustStore, commission_roots, validate_chain

__all__ = [
    "AnswerSigner",
    "CsPki",
    "TrustStore",
    "VerifiedAnswer",
    "commission_roots",
    "digest_value",
    "generate_pki",
    "load_signer",
    "validate_chain",
    "verify_answer",
    "write_pki",
]
