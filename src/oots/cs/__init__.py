"""Common Services: the Evidence Broker and the Data Service Directory, server and verifying client.

Public API (see ``docs/common-services.md``):

* client: :class:`CommonServicesClient` / :class:`AsyncCommonServicesClient` (three queries →
  ``oots.edm`` objects), :class:`RegistryError` (the one error type for HTTP and RegRep failures),
  :class:`AdditionalInputRequired` (``DSD:ERR:0005``); :func:`discover` (DNS NAPTR);
* signatures: :class:`AnswerSigner`, :func:`verify_answer`, :class:`VerifiedAnswer`, :func:`digest_value`;
  trust: :class:`TrustStore`, :func:`commission_roots`, :func:`validate_chain`; local keys:
  :func:`generate_pki`, :func:`write_pki`, :func:`load_signer`;
* server: :func:`create_app`, :func:`create_app_from_settings`; the catalogue: :class:`Catalogue`,
  :func:`load_catalogue` (data file), :func:`catalogue_from_lcm` (LCM documents); queries:
  :func:`parse_query`, :class:`QueryFailure`.
"""

from __future__ import annotations

from oots.cs.catalogue import Catalogue, NeedMoreInput
from oots.cs.client import AdditionalInputRequired, AsyncCommonServicesClient, CommonServicesClient, RegistryError
from oots.cs.datafile import load_catalogue
from oots.cs.discovery import discover
from oots.cs.jades import AnswerSigner, VerifiedAnswer, digest_value, verify_answer
from oots.cs.keys import CsPki, generate_pki, load_signer, write_pki
from oots.cs.lcm import catalogue_from_lcm
from oots.cs.queries import (
    DSD_DATA_SERVICES,
    EB_EVIDENCE_TYPES,
    EB_REQUIREMENTS,
    DataServicesQuery,
    EvidenceTypesQuery,
    QueryFailure,
    RequirementsQuery,
    Service,
    parse_query,
)
from oots.cs.server import create_app, create_app_from_settings
from oots.cs.trust import TrustStore, commission_roots, validate_chain

__all__ = [
    "DSD_DATA_SERVICES",
    "EB_EVIDENCE_TYPES",
    "EB_REQUIREMENTS",
    "AdditionalInputRequired",
    "AnswerSigner",
    "AsyncCommonServicesClient",
    "Catalogue",
    "CommonServicesClient",
    "CsPki",
    "DataServicesQuery",
    "EvidenceTypesQuery",
    "NeedMoreInput",
    "QueryFailure",
    "RegistryError",
    "RequirementsQuery",
    "Service",
    "TrustStore",
    "VerifiedAnswer",
    "catalogue_from_lcm",
    "commission_roots",
    "create_app",
    "create_app_from_settings",
    "digest_value",
    "discover",
    "generate_pki",
    "load_catalogue",
    "load_signer",
    "parse_query",
    "validate_chain",
    "verify_answer",
    "write_pki",
]
