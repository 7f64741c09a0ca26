"""Node configuration pieces several tests share: a Belgian birth-certificate data service and a CSV
births register that cannot be loaded (a date written 29/02/1984 on its line 2)."""

from __future__ import annotations

from pathlib import Path

BIRTHS_HEADER = "id,family_name,given_name,date_of_birth"


def be_births_service(identifier: str, register: str) -> str:
    """A ``[[provider.data_services]]`` table: a BE birth certificate served from ``register``."""
    return f"""
[[provider.data_services]]
identifier = "{identifier}"
evidence_type_classification = "https://sr.oots.tech.europa.eu/evidencetypeclassifications/BE/{identifier}"
titles = {{ en = "Birth certificate" }}
model = "birth-certificate"
jurisdiction = "BE"
register = "{register}"
authority = {{ identifier = "0999000001", scheme_id = "urn:cef.eu:names:identifier:EAS:0208", name = "BS" }}
"""


def broken_births_register(tmp_path: Path, name: str = "births") -> tuple[Path, str]:
    """Write ``births.csv`` with a bad date on line 2; return it and its ``[[provider.registers]]`` table."""
    path = tmp_path / "births.csv"
    path.write_text(f"{BIRTHS_HEADER}\n1,Dupont,Marie,29/02/1984\n", encoding="utf-8")
    return path, f'\n[[provider.registers]]\nname = "{name}"\nkind = "csv"\npath = "{path.as_posix()}"\n'
