"""Write the demo network's sample registers and test people (package data of ``oots.provider``).

    python scripts/make_provider_samples.py

Everything here is invented. The output is deterministic and committed; run this again after changing
the lists below. Writes ``src/oots/provider/data/people.json`` (for the eID test provider and tests),
``companies.json`` and ``registers/{births,diplomas,residence,companies,vehicles}.csv``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "src" / "oots" / "provider" / "data"

# Each person: as the eID asserts them (Latin script), the register's spelling where it differs
# ("native"), and the registers that hold them. "note" says what the person is there to test.
PEOPLE: list[dict[str, Any]] = [
    # --- BE
    dict(id="BE/BE/85072312345", country="BE", family="Peeters", given="Lotte", born="1985-07-23", gender="Female",
         place="Leuven", street="Naamsestraat", number="12", post="3000", city="Leuven", nuts="BE24",
         registers=["births", "diplomas", "residence", "vehicles"], note="plain case, every register"),
    dict(id="BE/BE/79110254321", country="BE", family="Van den Broeck", given="Jean-Baptiste", born="1979-11-02",
         gender="Male", place="Gent", street="Korenmarkt", number="4", post="9000", city="Gent", nuts="BE23",
         registers=["births", "residence"], note="particles and a hyphenated given name"),
    dict(id="FR/FR/2920375112233", country="BE", family="Dubois", given="Amélie", born="1992-03-14", gender="Female",
         place="Liège", street="Rue Saint-Gilles", number="58", post="4000", city="Liège", nuts="BE33",
         registers=["births"], register_has_id=False,
         note="French eID, born in Belgium: the Belgian register has no French identifier, names decide"),
    # --- FR
    dict(id="FR/FR/2900669123456", country="FR", family="Lefèvre", given="Élodie", born="1990-06-05", gender="Female",
         place="Lyon", street="Rue de la République", number="21", post="69002", city="Lyon", nuts="FRK26",
         registers=["births", "diplomas", "residence", "vehicles"], note="diacritics"),
    dict(id="FR/FR/1680151098765", country="FR", family="de La Fontaine", given="Jean-Luc", born="1968-01-30",
         gender="Male", place="Reims", street="Place Drouet-d'Erlon", number="3", post="51100", city="Reims",
         nuts="FRF23", registers=["births", "vehicles"], note="surname with particles"),
    dict(id="FR/FR/1000275000111", country="FR", family="Martin", given="Camille", born="2000-02-29", gender="Male",
         place="Paris", street="Rue Oberkampf", number="7", post="75011", city="Paris", nuts="FR101",
         registers=["births", "diplomas"], register_has_id=False,
         note="shares name, birth date and place with the next person; gender decides"),
    dict(id="FR/FR/2000275000222", country="FR", family="Martin", given="Camille", born="2000-02-29", gender="Female",
         place="Paris", street="Rue de Charonne", number="90", post="75011", city="Paris", nuts="FR101",
         registers=["births", "diplomas"], register_has_id=False,
         note="shares name, birth date and place with the previous person; gender decides"),
    # --- DE
    dict(id="DE/DE/T22000129", country="DE", family="Müller", given="Jürgen", born="1975-09-12", gender="Male",
         place="München", street="Leopoldstraße", number="44", post="80802", city="München", nuts="DE212",
         registers=["births", "diplomas", "residence", "vehicles"], note="umlauts (Mueller, Muller)"),
    dict(id="DE/DE/L01X00T47", country="DE", family="Schmidt", given="Anna-Lena", born="1988-12-01", gender="Female",
         place="Hamburg", birth_name="Weber", street="Mönckebergstraße", number="9", post="20095", city="Hamburg",
         nuts="DE600", registers=["births", "residence"], register_has_id=False,
         note="same names and birth date as the next person; the birth name decides"),
    dict(id="DE/DE/L01X00T48", country="DE", family="Schmidt", given="Anna-Lena", born="1988-12-01", gender="Female",
         place="Hamburg", birth_name="Fischer", street="Jungfernstieg", number="1", post="20354", city="Hamburg",
         nuts="DE600", registers=["births", "residence"], register_has_id=False,
         note="same names and birth date as the previous person; the birth name decides"),
    dict(id="UA/DE/0318004567", country="DE", family="Kovalenko", given="Olena", born="1993-04-18", gender="Female",
         native_family="Коваленко", native_given="Олена", place="Kyiv", street="Sonnenallee", number="120",
         post="12045", city="Berlin", nuts="DE300", registers=["residence"], register_has_id=False,
         note="Cyrillic in the register (Ukrainian table), Latin in the eID"),
    dict(id="DE/DE/R77125561", country="DE", family="Shcherbakov", given="Dmitry", born="1977-05-09", gender="Male",
         native_family="Щербаков", native_given="Дмитрий", place="Sankt Petersburg", street="Karl-Marx-Allee", number="70",
         post="10243", city="Berlin", nuts="DE300", registers=["residence"], register_has_id=False,
         note="Cyrillic in the register (ICAO passport spelling in the eID)"),
    # --- IT
    dict(id="IT/IT/RSSMRC85D12H501Z", country="IT", family="Rossi", given="Marco", born="1985-04-12", gender="Male",
         place="Roma", street="Via del Corso", number="101", post="00186", city="Roma", nuts="ITI43",
         registers=["births", "diplomas"], register_has_id=False,
         note="same names and birth date as the next person; the place of birth decides"),
    dict(id="IT/IT/RSSMRC85D12F205X", country="IT", family="Rossi", given="Marco", born="1985-04-12", gender="Male",
         place="Milano", street="Corso Buenos Aires", number="33", post="20124", city="Milano", nuts="ITC4C",
         registers=["births", "diplomas"], register_has_id=False,
         note="same names and birth date as the previous person; the place of birth decides"),
    dict(id="IT/IT/DSNGLI96M61F839K", country="IT", family="De Santis", given="Giulia", born="1996-08-21",
         gender="Female", place="Napoli", street="Via Toledo", number="256", post="80134", city="Napoli", nuts="ITF33",
         registers=["births", "diplomas", "residence"], note="particle as part of the surname"),
    # --- ES
    dict(id="ES/ES/12345678Z", country="ES", family="García Márquez", given="María José", born="1982-10-07",
         gender="Female", place="Sevilla", street="Calle Sierpes", number="15", post="41004", city="Sevilla",
         nuts="ES618", registers=["births", "diplomas", "residence"], note="two surnames, two given names"),
    dict(id="ES/ES/87654321X", country="ES", family="García López", given="María", born="1982-10-07", gender="Female",
         place="Sevilla", street="Avenida de la Constitución", number="2", post="41001", city="Sevilla", nuts="ES618",
         registers=["births"], register_has_id=False,
         note="'María García' born 1982-10-07 is ambiguous between this person and the previous one"),
    dict(id="ES/ES/11223344B", country="ES", family="Fernández de Córdoba", given="José Luis", born="1970-05-25",
         gender="Male", place="Córdoba", street="Calle Cruz Conde", number="8", post="14001", city="Córdoba",
         nuts="ES613", registers=["births", "vehicles"], note="compound surname with a particle"),
    # --- EL
    dict(id="EL/EL/AB1234567", country="EL", family="Papadopoulou", given="Eleni", born="1987-03-25", gender="Female",
         native_family="Παπαδοπούλου", native_given="Ελένη", place="Athina", native_place="Αθήνα",
         street="Ermou", number="25", post="10563", city="Athina", nuts="EL303",
         registers=["births", "diplomas", "residence", "vehicles"], note="Greek script in the register"),
    dict(id="EL/EL/AE7654321", country="EL", family="Chatzigeorgiou", given="Ioannis", born="1972-12-05",
         gender="Male", native_family="Χατζηγεωργίου", native_given="Ιωάννης", place="Thessaloniki",
         native_place="Θεσσαλονίκη", street="Tsimiski", number="40", post="54623", city="Thessaloniki", nuts="EL522",
         registers=["births", "residence"], register_has_id=False, note="Greek script; also spelt Hatzigeorgiou"),
    dict(id="EL/EL/AK5550123", country="EL", family="Bakogiannis", given="Evangelos", born="1990-07-01",
         gender="Male", native_family="Μπακογιάννης", native_given="Ευάγγελος", place="Patra", native_place="Πάτρα",
         street="Maizonos", number="110", post="26221", city="Patra", nuts="EL632",
         registers=["births", "diplomas"], register_has_id=False,
         note="Greek script; ELOT 743 gives Mpakogiannis, the eID says Bakogiannis"),
    # --- NL
    dict(id="NL/NL/999990019", country="NL", family="de Vries", given="Sanne", born="1991-01-15", gender="Female",
         place="Utrecht", street="Oudegracht", number="158", post="3511 AZ", city="Utrecht", nuts="NL310",
         registers=["births", "diplomas", "residence"], note="particle in lower case"),
    dict(id="NL/NL/999990020", country="NL", family="van der Berg", given="Pieter", born="1965-06-30", gender="Male",
         place="Rotterdam", street="Coolsingel", number="40", post="3011 AD", city="Rotterdam", nuts="NL33C",
         registers=["births", "vehicles"], note="two particles"),
    dict(id="NL/NL/999990032", country="NL", family="El Amrani", given="Fatima", born="1998-09-09", gender="Female",
         place="Amsterdam", street="Damrak", number="70", post="1012 LM", city="Amsterdam", nuts="NL329",
         registers=["births", "diplomas", "residence"], note="particle-like first part"),
    # --- PL
    dict(id="PL/PL/83021712345", country="PL", family="Wiśniewska-Kowalska", given="Małgorzata", born="1983-02-17",
         gender="Female", place="Kraków", street="Floriańska", number="14", post="31-019", city="Kraków", nuts="PL213",
         registers=["births", "diplomas", "residence", "vehicles"], note="hyphenated surname, Polish letters"),
    dict(id="PL/PL/95111154321", country="PL", family="Żółkiewski", given="Łukasz", born="1995-11-11", gender="Male",
         place="Gdańsk", street="Długa", number="45", post="80-831", city="Gdańsk", nuts="PL634",
         registers=["births", "residence"], note="Polish letters"),
    dict(id="UA/PL/0324009876", country="PL", family="Shevchenko", given="Oleksandr", born="1989-08-24",
         gender="Male", native_family="Шевченко", native_given="Олександр", place="Lviv", street="Marszałkowska",
         number="84", post="00-514", city="Warszawa", nuts="PL911", registers=["residence"], register_has_id=False,
         note="Cyrillic in the register"),
]

COMPANIES: list[dict[str, Any]] = [
    dict(country="BE", name="Brasserie Lambiek SA", form="SA", vat="BE0999000101", code="0999.000.101",
         eidas="BE/BE/0999000101", street="Rue Haute", number="100", post="1000", city="Bruxelles",
         founded="1998-04-01", activity="11.05 Manufacture of beer"),
    dict(country="FR", name="Atelier Lumière SAS", form="SAS", vat="FR99999000202", code="999000202",
         eidas="FR/FR/999000202", street="Rue de Rivoli", number="120", post="75001", city="Paris",
         founded="2011-09-15", activity="74.10 Specialised design activities"),
    dict(country="DE", name="Müller & Söhne GmbH", form="GmbH", vat="DE999000303", code="HRB 999303",
         eidas="DE/DE/HRB999303", street="Maximilianstraße", number="5", post="80539", city="München",
         founded="1952-02-11", activity="25.62 Machining"),
    dict(country="IT", name="Rossi Costruzioni S.r.l.", form="S.r.l.", vat="IT99900040404", code="RM-999404",
         eidas="IT/IT/99900040404", street="Via Appia Nuova", number="12", post="00183", city="Roma",
         founded="2005-06-20", activity="41.20 Construction of buildings"),
    dict(country="ES", name="Olivares del Sur S.L.", form="S.L.", vat="ESB99900505", code="B99900505",
         eidas="ES/ES/B99900505", street="Calle Feria", number="30", post="41003", city="Sevilla",
         founded="2014-01-08", activity="01.26 Growing of oleaginous fruits"),
    dict(country="EL", name="Ελληνικά Τρόφιμα Α.Ε.", form="Α.Ε.", vat="EL999000606", code="GEMI 999000606",
         eidas="EL/EL/999000606", street="Πανεπιστημίου", number="10", post="10671", city="Αθήνα",
         founded="1987-10-28", activity="10.89 Manufacture of other food products"),
    dict(country="NL", name="De Vries Logistiek B.V.", form="B.V.", vat="NL999000707B01", code="KVK 99900707",
         eidas="NL/NL/99900707", street="Waalhaven", number="3", post="3089 JH", city="Rotterdam",
         founded="2001-05-05", activity="52.10 Warehousing and storage"),
    dict(country="NL", name="Acme B.V.", form="B.V.", vat="NL999000808B01", code="KVK 99900808",
         eidas="NL/NL/99900808", street="Stationsplein", number="1", post="3511 ED", city="Utrecht",
         founded="2019-03-03", activity="62.01 Computer programming"),
    dict(country="NL", name="ACME BV", form="B.V.", vat="NL999000909B01", code="KVK 99900909",
         eidas="NL/NL/99900909", street="Markt", number="2", post="5611 EB", city="Eindhoven",
         founded="2020-07-07", activity="46.51 Wholesale of computers",
         note="same legal name as the previous company: only an identifier or the post code decides"),
    dict(country="PL", name="Bursztyn Sp. z o.o.", form="Sp. z o.o.", vat="PL9990001010", code="KRS 0009991010",
         eidas="PL/PL/0009991010", street="Mariacka", number="20", post="80-833", city="Gdańsk",
         founded="2009-12-12", activity="32.12 Manufacture of jewellery"),
]

DIPLOMAS = {
    "BE": ("Master of Science in Engineering", "KU Leuven", "7"),
    "FR": ("Diplôme national du brevet", "Collège Jean Moulin, Lyon", "2"),
    "DE": ("Allgemeine Hochschulreife (Abitur)", "Gymnasium München-Nord", "4"),
    "IT": ("Diploma di liceo scientifico", "Liceo Scientifico Statale", "4"),
    "ES": ("Título de Bachiller", "IES Murillo, Sevilla", "4"),
    "EL": ("Απολυτήριο Γενικού Λυκείου", "1ο Γενικό Λύκειο Αθηνών", "4"),
    "NL": ("Diploma vwo", "Stedelijk Gymnasium Utrecht", "4"),
    "PL": ("Świadectwo dojrzałości", "I Liceum Ogólnokształcące w Krakowie", "4"),
}
OFFICES = {
    "BE": "Burgerlijke Stand", "FR": "État civil", "DE": "Standesamt",
    "IT": "Ufficio di Stato Civile", "ES": "Registro Civil", "EL": "Ληξιαρχείο", "NL": "Burgerlijke Stand",
    "PL": "Urząd Stanu Cywilnego",
}
MAKES = [("Volkswagen", "Golf", "petrol"), ("Renault", "Zoe", "electric"), ("Fiat", "Panda", "petrol"),
         ("Toyota", "Yaris", "hybrid"), ("Škoda", "Octavia", "diesel"), ("Peugeot", "208", "petrol")]


def _plate(country: str, n: int) -> str:
    return {
        "BE": f"1-ABC-{100 + n}", "FR": f"AB-{100 + n}-CD", "DE": f"M-OT {1000 + n}", "IT": f"AB{100 + n}CD",
        "ES": f"{1000 + n} BCD", "EL": f"ΙΚΒ-{1000 + n}", "NL": f"K-{100 + n}-BB", "PL": f"KR {10000 + n}",
    }[country]


def main() -> None:
    (OUT / "registers").mkdir(parents=True, exist_ok=True)
    people_out = []
    births, diplomas, residence, vehicles = [], [], [], []
    for n, p in enumerate(PEOPLE, start=1):
        reg_family = p.get("native_family", p["family"])
        reg_given = p.get("native_given", p["given"])
        reg_place = p.get("native_place", p["place"])
        ident = p["id"] if p.get("register_has_id", True) else ""
        common = {
            "country": p["country"], "identifier": ident, "family_name": reg_family, "given_name": reg_given,
            "date_of_birth": p["born"], "gender": p["gender"],
        }
        people_out.append({
            "identifier": p["id"],
            "family_name": p["family"],
            "given_name": p["given"],
            "date_of_birth": p["born"],
            "gender": p["gender"],
            "place_of_birth": p["place"],
            "birth_name": p.get("birth_name"),
            "family_name_native": p.get("native_family"),
            "given_name_native": p.get("native_given"),
            "current_address": {
                "thoroughfare": p["street"], "locator_designator": p["number"], "post_code": p["post"],
                "post_city_name": p["city"], "admin_unit_level_1": p["country"], "admin_unit_level_2": p["nuts"],
            },
            "level_of_assurance": "High",
            "register_country": p["country"],
            "registers": p["registers"],
            "note": p["note"],
        })
        if "births" in p["registers"]:
            births.append({
                "id": f"B-{p['country']}-{n:04d}", **common, "place_of_birth": reg_place,
                "birth_name": p.get("birth_name", ""),
                "nationality": p["id"][:2] if p["id"][:2] != "UA" else "UA",
                "registration_number": f"{p['born'][:4]}/{n:05d}", "registered_on": p["born"],
                "registry_office": f"{OFFICES[p['country']]} {reg_place}",
            })
        if "diplomas" in p["registers"]:
            title, institution, level = DIPLOMAS[p["country"]]
            year = int(p["born"][:4]) + (18 if level == "4" else 15 if level == "2" else 24)
            diplomas.append({
                "id": f"D-{p['country']}-{n:04d}", **common, "place_of_birth": reg_place,
                "diploma_title": title, "eqf_level": level, "institution": institution,
                "awarded_on": f"{year}-07-0{1 + n % 9}", "grade": ["A", "B", "C", "9,67", "16/20"][n % 5],
                "certificate_number": f"{p['country']}-{year}-{n:06d}",
            })
        if "residence" in p["registers"]:
            residence.append({
                "id": f"R-{p['country']}-{n:04d}", **common, "thoroughfare": p["street"],
                "locator_designator": p["number"], "post_code": p["post"], "post_city_name": p["city"],
                "admin_unit_level_2": p["nuts"], "registered_since": f"{int(p['born'][:4]) + 20}-09-01",
            })
        if "vehicles" in p["registers"]:
            make, model, fuel = MAKES[n % len(MAKES)]
            vehicles.append({
                "id": f"V-{p['country']}-{n:04d}", **common, "post_code": p["post"],
                "registration_plate": _plate(p["country"], n), "vin": f"WVWZZZ1KZ{n:02d}W{100000 + n}",
                "make": make, "model": model, "fuel": fuel, "first_registration": f"{2015 + n % 8}-03-15",
            })
    companies = []
    for n, c in enumerate(COMPANIES, start=1):
        companies.append({
            "id": f"C-{c['country']}-{n:04d}", "country": c["country"], "legal_name": c["name"],
            "legal_form": c["form"], "vat": c["vat"], "business_code": c["code"], "lei": "",
            "eidas_identifier": c["eidas"], "thoroughfare": c["street"], "locator_designator": c["number"],
            "post_code": c["post"], "post_city_name": c["city"], "registered_on": c["founded"], "status": "active",
            "activity": c["activity"],
        })
    for name, rows in (("births", births), ("diplomas", diplomas), ("residence", residence),
                       ("vehicles", vehicles), ("companies", companies)):
        with (OUT / "registers" / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    doc = {
        "description": (
            "Invented test people of the oots demo network. The eID test provider offers these people; the "
            "sample registers of oots.provider hold them. 'identifier' is the eIDAS identifier CC/DD/value as "
            "issued for the register country (an eID node replaces DD by the destination country; matching "
            "ignores DD). Names are as an eID asserts them (Latin script); *_native is the register's spelling."
        ),
        "people": people_out,
    }
    (OUT / "people.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    legal_doc = {
        "description": "Invented companies of the oots demo network (the sample company registers hold them).",
        "companies": [
            {"legal_name": c["name"], "country": c["country"], "legal_person_identifier": c["eidas"],
             "identifiers": {"VAT": c["vat"], "BusinessCode": c["code"]}, "post_code": c["post"],
             "note": c.get("note", "")}
            for c in COMPANIES
        ],
    }
    (OUT / "companies.json").write_text(json.dumps(legal_doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
