"""Write the eID test provider's identities (src/oots/eid/testidp/people.json) from the demo registers'.

The people and companies of ``src/oots/provider/data/{people,companies}.json`` are the ones the sample
registers hold, so the test provider offers exactly them, grouped by the country of their register;
each company is represented by the first person of its country; and each country gets one person who
matches nobody. Run it after changing the provider's sample data:

    .venv/bin/python scripts/make_eid_people.py [PROVIDER_DATA_DIR] [OUT]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COUNTRIES = {
    "BE": "Belgium",
    "FR": "France",
    "DE": "Germany",
    "IT": "Italy",
    "ES": "Spain",
    "EL": "Greece",
    "NL": "Netherlands",
    "PL": "Poland",
}


def _address(raw: dict[str, Any]) -> dict[str, str]:
    names = {"admin_unit_level_1": "admin_unit_level1", "admin_unit_level_2": "admin_unit_level2"}
    return {names.get(k, k): v for k, v in raw.items() if v is not None}


def build(people_doc: dict[str, Any], companies_doc: dict[str, Any]) -> dict[str, Any]:
    countries: dict[str, dict[str, Any]] = {
        code: {"name": name, "people": [], "companies": []} for code, name in COUNTRIES.items()
    }
    for person in people_doc["people"]:
        entry = countries[person["register_country"]]
        item = {
            "key": f"{person['register_country'].lower()}-{len(entry['people']) + 1}",
            "person_identifier": person["identifier"],
            "family_name": person["family_name"],
            "given_name": person["given_name"],
            "date_of_birth": person["date_of_birth"],
            "gender": person["gender"],
            "place_of_birth": person["place_of_birth"],
            "current_address": _address(person["current_address"]),
            "note": person["note"] or "in the demo registers",
        }
        if person.get("birth_name"):
            item["birth_name"] = person["birth_name"]
        entry["people"].append(item)
    for code, entry in countries.items():
        entry["people"].append(
            {
                "key": f"{code.lower()}-nobody",
                "person_identifier": f"{code}/{code}/999999990",
                "family_name": "Nemo",
                "given_name": "Outis",
                "date_of_birth": "1960-01-01",
                "note": "in no register: matches nobody",
            }
        )
    for company in companies_doc["companies"]:
        entry = countries[company["country"]]
        item = {
            "key": f"{company['country'].lower()}-company-{len(entry['companies']) + 1}",
            "legal_person_identifier": company["legal_person_identifier"],
            "legal_name": company["legal_name"],
            "registered_address": {"post_code": company["post_code"], "admin_unit_level1": company["country"]},
            "representative": entry["people"][0]["key"],
            "note": company["note"] or "in the demo registers",
        }
        if "VAT" in company["identifiers"]:
            item["vat_registration"] = company["identifiers"]["VAT"]
        entry["companies"].append(item)
    return {
        "about": "Test identities of the oots test identity provider, written by scripts/make_eid_people.py "
        "from the demo registers' people and companies (src/oots/provider/data). Invented; any likeness to "
        "real persons is accidental. Identifiers have the eIDAS form CC/CC/identifier.",
        "countries": countries,
    }


def main(argv: list[str]) -> int:
    data = Path(argv[0]) if argv else ROOT / "src" / "oots" / "provider" / "data"
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "src" / "oots" / "eid" / "testidp" / "people.json"
    people = json.loads((data / "people.json").read_text(encoding="utf-8"))
    companies = json.loads((data / "companies.json").read_text(encoding="utf-8"))
    text = json.dumps(build(people, companies), ensure_ascii=False, indent=1) + "\n"
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
