"""The [provider] settings section and what is built from it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from oots import edm
from oots.edm import EvidenceTypeDistribution, Identifier, LevelOfAssurance, Person, Text
from oots.errors import ConfigError
from oots.provider.config import build_data_services, build_register
from oots.provider.intake import Intake
from oots.provider.matching import Attribute, NameLevel
from oots.provider.registers import CsvRegister, HttpJsonRegister, SqlRegister
from oots.provider.samples import sample_register_path
from oots.settings import load_settings
from oots.validation import validate

from .parties import agent_of, query_request

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)

SERVICE = """
[[provider.data_services]]
identifier = "5b2f1c8e-3a4d-4e6f-8b9a-0c1d2e3f4a5b"
evidence_type_classification = "https://sr.oots.tech.europa.eu/evidencetypeclassifications/BE/5b2f1c8e"
titles = { en = "Birth certificate", nl = "Geboorteakte" }
model = "birth-certificate"
formats = ["application/pdf", "application/xml"]
level_of_assurance = "High"
preview = "required"
jurisdiction = "BE"
language = "NL"
register = "{register}"
authority = { identifier = "0999000001", scheme_id = "urn:cef.eu:names:identifier:EAS:0208", name = "BS" }
other_authorities = [
  { identifier = "0999000002", scheme_id = "urn:cef.eu:names:identifier:EAS:0208", name = "BS Gent" },
]

[provider.data_services.matching]
min_family_level = "exact"
allow_swapped_names = true
tie_breakers = ["gender"]
reject_on_conflict = ["gender"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_register_and_data_service(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = f"""
[node]
country = "BE"

[provider]
samples = true

[[provider.registers]]
name = "be-births"
kind = "csv"
path = "{sample_register_path("births")}"
where = {{ country = "BE" }}
""" + SERVICE.replace("{register}", "be-births")
    settings = load_settings(write(tmp_path, config))
    services = build_data_services(settings)
    assert len(services) == 6  # five samples of BE and the configured one
    mine = services[-1]
    assert isinstance(mine.register, CsvRegister)
    assert len(mine.register) == 3
    assert mine.titles == {"EN": "Birth certificate", "NL": "Geboorteakte"}
    assert mine.title("nl") == "Geboorteakte"
    assert mine.formats == ("application/pdf", "application/xml")
    assert mine.rules.min_family_level is NameLevel.EXACT
    assert mine.rules.allow_swapped_names
    assert mine.rules.tie_breakers == (Attribute.GENDER,)
    assert mine.preview.value == "required"
    assert [(a.identifier, a.name) for a in mine.other_authorities] == [("0999000002", "BS Gent")]
    assert mine.for_provider("0999000002", "urn:cef.eu:names:identifier:EAS:0208").authority.name == "BS Gent"


def test_unknown_register_reference_is_a_config_error(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown register 'nope'"):
        load_settings(write(tmp_path, SERVICE.replace("{register}", "nope")))


def test_incomplete_register_is_a_config_error(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="a sql register needs url, source"):
        load_settings(write(tmp_path, '[[provider.registers]]\nname = "x"\nkind = "sql"\n'))
    with pytest.raises(ConfigError, match=r"provider\.registers\.0\.colour: unknown key"):
        load_settings(
            write(tmp_path, '[[provider.registers]]\nname = "x"\nkind = "csv"\npath = "a.csv"\ncolour = "red"\n')
        )


def test_unknown_model_and_samples_country(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = f"""
[[provider.registers]]
name = "r"
kind = "csv"
path = "{sample_register_path("births")}"
""" + SERVICE.replace("{register}", "r").replace('"birth-certificate"', '"horoscope"')
    with pytest.raises(ConfigError, match="no data model 'horoscope'"):
        build_data_services(load_settings(write(tmp_path, config)))
    with pytest.raises(ConfigError, match="no sample registers for SE"):
        build_data_services(load_settings(write(tmp_path, '[node]\ncountry = "SE"\n[provider]\nsamples = true\n')))


def test_field_map_and_other_adapters(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    db = tmp_path / "r.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (nr TEXT PRIMARY KEY, nom TEXT, prenom TEXT, ne DATE)"))
    config = f"""
[[provider.registers]]
name = "sql"
kind = "sql"
url = "sqlite:///{db}"
source = "people"
keys_table = "people_keys"
fields = {{ record_id = "nr", family_name = "nom", given_name = "prenom", date_of_birth = "ne" }}

[[provider.registers]]
name = "api"
kind = "http"
url = "https://register.example/api"
bearer_token_file = "{tmp_path / "token"}"

[[provider.registers]]
name = "bad"
kind = "csv"
path = "x.csv"
fields = {{ colour = "red" }}
"""
    (tmp_path / "token").write_text("s3cret\n", encoding="utf-8")
    settings = load_settings(write(tmp_path, config))
    sql, api, bad = settings.provider.registers
    register = build_register(sql)
    assert isinstance(register, SqlRegister)
    assert register.fields.family_name == "nom"
    http = build_register(api)
    assert isinstance(http, HttpJsonRegister)
    assert http._client.headers["Authorization"] == "Bearer s3cret"
    http.close()
    with pytest.raises(ConfigError, match="colour: neither an identity attribute nor a field of the data model"):
        build_register(bad)
    engine.dispose()


DOCS = Path(__file__).resolve().parents[3] / "docs" / "provider.md"
DUTCH_FILE = (
    "aktenummer,achternaam,voornamen,geboortedatum,inschrijvingsdatum,gemeente\n"
    "1961-0042,Jansen,Pieter,1961-03-05,1961-03-07,Utrecht\n"
)


def field_map_example() -> str:
    """The TOML example of docs/provider.md's field map."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("Which register field holds which identity attribute") :]
    return section[section.index("```toml\n") + 8 : section.index("```\n", section.index("```toml\n") + 8)]


def test_the_field_map_renames_evidence_fields_as_the_docs_show(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    csv_path = tmp_path / "geboorten.csv"
    csv_path.write_text(DUTCH_FILE, encoding="utf-8")
    example = field_map_example().replace("/srv/registers/geboorten.csv", csv_path.as_posix())
    [service] = build_data_services(load_settings(write(tmp_path, '[node]\ncountry = "NL"\n' + example)))
    record = service.register.fetch("1961-0042")
    assert record.data["registration_number"] == "1961-0042"
    assert record.data["registered_on"] == "1961-03-07"
    assert record.data["registry_office"] == "Utrecht"
    assert record.data["family_name"] == "Jansen"
    person = Person("Jansen", "Pieter", dt.date(1961, 3, 5), LevelOfAssurance.HIGH)
    result = service.identify(person)
    assert result.record is not None
    [evidence] = service.render(result.record, [EvidenceTypeDistribution("application/xml")], subject=person)
    xml = evidence.document.content.decode("utf-8")
    assert "Utrecht" in xml
    assert "1961-03-07" in xml


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            'registred_on = "inschrijvingsdatum"',
            "fields.registred_on: neither an identity attribute nor a field of the data model",
        ),
        ('diploma_title = "gemeente"', "fields.diploma_title: neither an identity attribute"),  # another model's
        ('eidas_identifier = "gemeente"', "map it with legal_person_identifier"),
        ('nationality = "nationaliteit"', "fields.nationality names the column 'nationaliteit'"),
    ],
)
def test_the_field_map_refuses_an_unknown_field_or_a_missing_column(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, line: str, problem: str
) -> None:
    csv_path = tmp_path / "geboorten.csv"
    csv_path.write_text(DUTCH_FILE, encoding="utf-8")
    example = field_map_example().replace("/srv/registers/geboorten.csv", csv_path.as_posix())
    example = example.replace('registry_office = "gemeente"', f'registry_office = "gemeente"\n{line}')
    settings = load_settings(write(tmp_path, '[node]\ncountry = "NL"\n' + example))
    with pytest.raises(ConfigError) as caught:
        build_data_services(settings)
    assert problem in caught.value.message
    assert caught.value.problems[0][0].startswith("provider.registers.nl-births.fields.")


def test_an_authority_named_in_several_languages_is_sent_with_every_name(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    # Before, only `name` could be given, and it went out tagged with the service's language.
    named = 'name = "BS", names = { nl = "Burgerlijke Stand", FR = "État civil", en = "Civil registry" } }'
    service = SERVICE.replace("{register}", "be-births").replace('preview = "required"', 'preview = "never"')
    service = service.replace('name = "BS" }', named, 1)
    service = service.replace("BE/5b2f1c8e", "BE/5b2f1c8e-3a4d-4e6f-8b9a-0c1d2e3f4a5b")  # a UUID, as the rules want
    config = (
        f"""
[[provider.registers]]
name = "be-births"
kind = "csv"
path = "{sample_register_path("births")}"
where = {{ country = "BE" }}
"""
        + service
    )
    (mine,) = build_data_services(load_settings(write(tmp_path, config)))
    lotte = Person(
        family_name="Peeters",
        given_name="Lotte",
        date_of_birth=dt.date(1985, 7, 23),
        identifier=Identifier("BE/BE/85072312345", "eidas"),
        level_of_assurance=LevelOfAssurance.HIGH,
    )
    request = query_request(
        lotte, evidence_type=mine.evidence_type(), fmt="application/xml", provider=agent_of(mine.authority), issued=NOW
    )
    answer = Intake([mine], clock=lambda: NOW).answer(edm.to_xml(request), sent=NOW)
    assert answer.code is None, answer.reason
    report = validate(answer.payloads[0].data)
    assert report.valid, [f.as_dict() for f in report.findings if f.blocking]
    document = answer.document
    assert isinstance(document, edm.QueryResponse)
    every_name = (Text("Burgerlijke Stand", "NL"), Text("État civil", "FR"), Text("Civil registry", "EN"))
    assert document.evidence_provider[0].names == every_name
    assert {e.metadata.issuing_authority.names for p in document.packages for e in p.evidences} == {every_name}
    # an authority given only its name: that name, in the service's language
    gent = mine.for_provider("0999000002", "urn:cef.eu:names:identifier:EAS:0208")
    assert gent.authority_agent().names == (Text("BS Gent", "NL"),)


def test_an_authority_name_in_something_else_than_a_language_is_a_config_error(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    bad = SERVICE.replace("{register}", "r").replace('name = "BS" }', 'name = "BS", names = { dutch = "BS" } }', 1)
    with pytest.raises(ConfigError, match=r"provider\.data_services\.0\.authority\.names.*two-letter"):
        load_settings(write(tmp_path, '[[provider.registers]]\nname = "r"\nkind = "csv"\npath = "a.csv"\n' + bad))
