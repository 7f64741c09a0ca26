"""The demo data models: what an XML or JSON evidence of each evidence type looks like.

A data service declares the data model its structured distributions conform to (``sdg:ConformsTo``).
Each model here is defined once (:class:`DataModel`) and published as an XML Schema and a JSON Schema
(package data in ``models/``, written by :func:`write_schemas`; a test keeps them in step with the
definitions). Rendered documents are validated against those files before they leave the provider:
XML with lxml's XSD validator, JSON with :func:`validate_json`, a small validator for the subset of
JSON Schema (2020-12) the models use.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from oots.errors import NotFound, ValidationFailed

__all__ = [
    "MODELS",
    "SR_DATAMODELS",
    "DataModel",
    "ModelField",
    "canonical_model_url",
    "json_schema",
    "model_by_conforms_to",
    "model_by_name",
    "validate_json",
    "validate_json_document",
    "validate_xml",
    "write_schemas",
    "xml_schema",
]

#: Where the models are published (their ``ConformsTo``): the Semantic Repository's data models, as
#: the Common Services catalogue (``oots.cs`` package data) lists them in each distribution.
SR_DATAMODELS = "https://sr.oots.tech.ec.europa.eu/datamodels/"
#: The v1.0 profile's spelling of the same place (old domain, ``distributions/``).
_SR_V1_DISTRIBUTIONS = "https://sr.oots.tech.europa.eu/distributions/"
_SR_V1_DATAMODELS = "https://sr.oots.tech.europa.eu/datamodels/"
_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


@dataclass(frozen=True, slots=True)
class ModelField:
    """One field: the register field it comes from (``key``), its element name and its label."""

    key: str
    element: str
    label: str
    type: Literal["string", "date"] = "string"
    required: bool = False

    @property
    def json_name(self) -> str:
        return self.element[0].lower() + self.element[1:]


@dataclass(frozen=True, slots=True)
class DataModel:
    """A demo data model: a root element, a subject block and a details block.

    ``published`` is the name the Semantic Repository publishes it under (the last segment of its
    ``ConformsTo`` before the version), the one the Common Services catalogue lists."""

    name: str
    title: str
    root: str
    subject: tuple[ModelField, ...]
    details_element: str
    details: tuple[ModelField, ...]
    version: str = "1.0.0"
    legal_person: bool = False
    published: str = ""

    @property
    def namespace(self) -> str:
        return f"urn:oots:demo:model:{self.name}:{self.version}"

    @property
    def conforms_to(self) -> str:
        return f"{SR_DATAMODELS}{self.published or self.name}-{self.version}"

    @property
    def xsd_file(self) -> str:
        return f"{self.name}.xsd"

    @property
    def json_schema_file(self) -> str:
        return f"{self.name}.schema.json"


_PERSON = (
    ModelField("family_name", "FamilyName", "Family name", required=True),
    ModelField("given_name", "GivenName", "Given name", required=True),
    ModelField("date_of_birth", "DateOfBirth", "Date of birth", "date", required=True),
    ModelField("birth_name", "BirthName", "Birth name"),
    ModelField("place_of_birth", "PlaceOfBirth", "Place of birth"),
    ModelField("gender", "Gender", "Gender"),
    ModelField("identifier", "PersonIdentifier", "Person identifier"),
)
_COMPANY = (
    ModelField("legal_name", "LegalName", "Legal name", required=True),
    ModelField("legal_form", "LegalForm", "Legal form"),
    ModelField("vat", "VATNumber", "VAT number"),
    ModelField("business_code", "BusinessCode", "Registration number"),
    ModelField("eidas_identifier", "LegalPersonIdentifier", "Legal person identifier"),
)

MODELS: tuple[DataModel, ...] = (
    DataModel(
        "birth-certificate",
        "Birth certificate",
        "BirthCertificate",
        _PERSON,
        "Registration",
        (
            ModelField("registration_number", "RegistrationNumber", "Registration number", required=True),
            ModelField("registered_on", "RegistrationDate", "Date of registration", "date", required=True),
            ModelField("registry_office", "RegistryOffice", "Registry office", required=True),
            ModelField("nationality", "Nationality", "Nationality"),
        ),
        published="certificate-of-birth",
    ),
    DataModel(
        "diploma",
        "Diploma",
        "Diploma",
        _PERSON,
        "Award",
        (
            ModelField("diploma_title", "Title", "Diploma", required=True),
            ModelField("institution", "Institution", "Awarding institution", required=True),
            ModelField("awarded_on", "AwardDate", "Date of award", "date", required=True),
            ModelField("eqf_level", "EQFLevel", "EQF level", required=True),
            ModelField("grade", "Grade", "Final grade"),
            ModelField("certificate_number", "CertificateNumber", "Certificate number", required=True),
        ),
        published="diploma",
    ),
    DataModel(
        "diploma-supplement",
        "Diploma supplement",
        "DiplomaSupplement",
        _PERSON,
        "Qualification",
        (
            ModelField("diploma_title", "Title", "Qualification", required=True),
            ModelField("eqf_level", "EQFLevel", "EQF level", required=True),
            ModelField("grade", "Grade", "Final grade"),
            ModelField("institution", "Institution", "Awarding institution", required=True),
            ModelField("certificate_number", "CertificateNumber", "Certificate number", required=True),
        ),
        published="diploma-supplement",
    ),
    DataModel(
        "residence-certificate",
        "Certificate of residence",
        "ResidenceCertificate",
        _PERSON,
        "Residence",
        (
            ModelField("thoroughfare", "Thoroughfare", "Street", required=True),
            ModelField("locator_designator", "LocatorDesignator", "Number"),
            ModelField("post_code", "PostCode", "Post code", required=True),
            ModelField("post_city_name", "PostCityName", "City", required=True),
            ModelField("admin_unit_level_2", "NUTS", "Region (NUTS)"),
            ModelField("registered_since", "RegisteredSince", "Registered since", "date", required=True),
        ),
        published="proof-of-residence",
    ),
    DataModel(
        "company-register-extract",
        "Extract of the commercial register",
        "CompanyRegisterExtract",
        _COMPANY,
        "Registration",
        (
            ModelField("thoroughfare", "Thoroughfare", "Street", required=True),
            ModelField("locator_designator", "LocatorDesignator", "Number"),
            ModelField("post_code", "PostCode", "Post code", required=True),
            ModelField("post_city_name", "PostCityName", "City", required=True),
            ModelField("registered_on", "RegistrationDate", "Registered on", "date", required=True),
            ModelField("status", "Status", "Status", required=True),
            ModelField("activity", "Activity", "Main activity (NACE)"),
        ),
        legal_person=True,
        published="company-registration",
    ),
    DataModel(
        "vehicle-registration",
        "Vehicle registration certificate",
        "VehicleRegistration",
        _PERSON,
        "Vehicle",
        (
            ModelField("registration_plate", "RegistrationPlate", "Registration plate", required=True),
            ModelField("vin", "VIN", "Vehicle identification number", required=True),
            ModelField("make", "Make", "Make", required=True),
            ModelField("model", "Model", "Model", required=True),
            ModelField("fuel", "Fuel", "Fuel"),
            ModelField("first_registration", "FirstRegistration", "First registration", "date", required=True),
        ),
        published="vehicle-registration",
    ),
)

#: Elements every model's root starts with: the evidence's own metadata.
HEADER = (
    ("Identifier", "Evidence identifier"),
    ("IssuingAuthority", "Issuing authority"),
    ("IssuingDate", "Date of issue"),
    ("Language", "Language"),
)


#: Earlier names of models, still accepted in configurations.
RENAMED = {"secondary-education-diploma": "diploma"}


def model_by_name(name: str) -> DataModel:
    name = RENAMED.get(name, name)
    for model in MODELS:
        if model.name == name:
            return model
    raise NotFound(f"there is no data model {name!r} (known: {', '.join(m.name for m in MODELS)})")


def canonical_model_url(url: str) -> str:
    """A data model URL in one spelling (current domain, ``datamodels/``), so that the v1.0
    profile's ``https://sr.oots.tech.europa.eu/distributions/…`` names the same model."""
    url = url.strip()
    for old in (_SR_V1_DISTRIBUTIONS, _SR_V1_DATAMODELS):
        if url.startswith(old):
            return SR_DATAMODELS + url[len(old) :]
    return url


def model_by_conforms_to(url: str) -> DataModel:
    """The model published under ``url`` (either profile's spelling)."""
    wanted = canonical_model_url(url)
    for model in MODELS:
        if model.conforms_to == wanted:
            return model
    raise NotFound("no data model is published under that ConformsTo URL")


# --- schema files ----------------------------------------------------------------------------------
XS = "http://www.w3.org/2001/XMLSchema"


def xml_schema(model: DataModel) -> bytes:
    """The XML Schema of a model."""
    q = f"{{{XS}}}"
    schema = etree.Element(
        q + "schema",
        nsmap={"xs": XS, "m": model.namespace},
        targetNamespace=model.namespace,
        elementFormDefault="qualified",
        version=model.version,
    )
    doc = etree.SubElement(etree.SubElement(schema, q + "annotation"), q + "documentation")
    doc.text = f"oots demo data model: {model.title} {model.version} (ConformsTo {model.conforms_to})."
    text = etree.SubElement(schema, q + "simpleType", name="Text")
    restriction = etree.SubElement(text, q + "restriction", base="xs:string")
    etree.SubElement(restriction, q + "minLength", value="1")
    etree.SubElement(restriction, q + "maxLength", value="500")
    authority = etree.SubElement(schema, q + "complexType", name="Authority")
    seq = etree.SubElement(authority, q + "sequence")
    ident = etree.SubElement(seq, q + "element", name="Identifier")
    ct = etree.SubElement(ident, q + "complexType")
    ext = etree.SubElement(etree.SubElement(ct, q + "simpleContent"), q + "extension", base="m:Text")
    etree.SubElement(ext, q + "attribute", name="schemeID", type="xs:string", use="required")
    etree.SubElement(seq, q + "element", name="Name", type="m:Text")

    def block(name: str, fields: tuple[ModelField, ...]) -> None:
        ctype = etree.SubElement(schema, q + "complexType", name=name + "Type")
        s = etree.SubElement(ctype, q + "sequence")
        for f in fields:
            attrs = {"name": f.element, "type": "xs:date" if f.type == "date" else "m:Text"}
            if not f.required:
                attrs["minOccurs"] = "0"
            etree.SubElement(s, q + "element", attrs)

    block("Subject", model.subject)
    block(model.details_element, model.details)
    root = etree.SubElement(schema, q + "element", name=model.root)
    rtype = etree.SubElement(root, q + "complexType")
    s = etree.SubElement(rtype, q + "sequence")
    etree.SubElement(s, q + "element", name="Identifier", type="m:Text")
    etree.SubElement(s, q + "element", name="IssuingAuthority", type="m:Authority")
    etree.SubElement(s, q + "element", name="IssuingDate", type="xs:date")
    lang = etree.SubElement(s, q + "element", name="Language")
    lt = etree.SubElement(lang, q + "simpleType")
    lr = etree.SubElement(lt, q + "restriction", base="xs:string")
    etree.SubElement(lr, q + "pattern", value="[A-Z]{2}")
    etree.SubElement(s, q + "element", name="Subject", type="m:SubjectType")
    etree.SubElement(s, q + "element", name=model.details_element, type=f"m:{model.details_element}Type")
    etree.SubElement(rtype, q + "attribute", name="version", type="xs:string", fixed=model.version)
    return etree.tostring(schema, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def json_schema(model: DataModel) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a model."""

    def block(fields: tuple[ModelField, ...]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for f in fields:
            spec: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 500, "title": f.label}
            if f.type == "date":
                spec = {"type": "string", "format": "date", "pattern": _DATE_PATTERN, "title": f.label}
            props[f.json_name] = spec
        return {
            "type": "object",
            "properties": props,
            "required": [f.json_name for f in fields if f.required],
            "additionalProperties": False,
        }

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": model.conforms_to,
        "title": f"oots demo data model: {model.title} {model.version}",
        "type": "object",
        "properties": {
            "model": {"const": model.conforms_to},
            "identifier": {"type": "string", "minLength": 1},
            "issuingAuthority": {
                "type": "object",
                "properties": {
                    "identifier": {"type": "string", "minLength": 1},
                    "schemeID": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "minLength": 1},
                },
                "required": ["identifier", "schemeID", "name"],
                "additionalProperties": False,
            },
            "issuingDate": {"type": "string", "format": "date", "pattern": _DATE_PATTERN},
            "language": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "subject": block(model.subject),
            model.details_element[0].lower() + model.details_element[1:]: block(model.details),
        },
        "required": [
            "model",
            "identifier",
            "issuingAuthority",
            "issuingDate",
            "language",
            "subject",
            model.details_element[0].lower() + model.details_element[1:],
        ],
        "additionalProperties": False,
    }


def _models_dir() -> Path:
    return Path(str(resources.files("oots.provider") / "models"))


def write_schemas(directory: Path | None = None) -> list[Path]:
    """Write every model's XSD and JSON Schema (the published files); returns the paths."""
    out = directory or _models_dir()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for model in MODELS:
        xsd = out / model.xsd_file
        xsd.write_bytes(xml_schema(model))
        js = out / model.json_schema_file
        js.write_text(json.dumps(json_schema(model), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written += [xsd, js]
    return written


# --- validation ------------------------------------------------------------------------------------
@cache
def _xsd(name: str) -> etree.XMLSchema:
    model = model_by_name(name)
    doc = etree.parse(str(_models_dir() / model.xsd_file))  # our own package file, not outside input
    return etree.XMLSchema(doc)


@cache
def _json_schema(name: str) -> dict[str, Any]:
    model = model_by_name(name)
    loaded: dict[str, Any] = json.loads((_models_dir() / model.json_schema_file).read_text(encoding="utf-8"))
    return loaded


def validate_xml(model: DataModel, document: etree._Element) -> None:
    """Raise :class:`ValidationFailed` (with the XSD's messages) unless ``document`` is valid."""
    schema = _xsd(model.name)
    if not schema.validate(document):
        findings: list[object] = [f"line {e.line}: {e.message}" for e in schema.error_log]
        raise ValidationFailed(f"the {model.name} XML is not valid against its schema", findings)


def validate_json(schema: Mapping[str, Any], value: Any, path: str = "$") -> list[str]:
    """Problems of ``value`` against ``schema`` (the subset the models use: type, const, properties,
    required, additionalProperties, minLength, maxLength, pattern, format date, enum, items)."""
    problems: list[str] = []
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: must be one of {schema['enum']!r}")
    kind = schema.get("type")
    checks = {"object": dict, "string": str, "array": list, "boolean": bool}
    if kind in checks and not isinstance(value, checks[kind]):
        return [*problems, f"{path}: must be of type {kind}"]
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{path}: does not match {schema['pattern']}")
        if schema.get("format") == "date" and not _is_date(value):
            problems.append(f"{path}: not a date")
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{path}: {name} is required")
        for name, item in value.items():
            if name in props:
                problems += validate_json(props[name], item, f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}: {name} is not allowed")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += validate_json(schema["items"], item, f"{path}[{i}]")
    return problems


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return bool(re.fullmatch(_DATE_PATTERN.strip("^$"), value))


def validate_json_document(model: DataModel, value: Any) -> None:
    """Raise :class:`ValidationFailed` unless ``value`` is valid against the model's JSON Schema."""
    problems = validate_json(_json_schema(model.name), value)
    if problems:
        raise ValidationFailed(f"the {model.name} JSON is not valid against its schema", list(problems))
