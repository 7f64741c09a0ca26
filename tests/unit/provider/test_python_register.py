"""``kind = "python"``: a register owner's own adapter, imported from the settings (docs/provider.md).

The adapter is the example of docs/provider.md ("Write your own register"), written to a module on
``sys.path`` and wired through a TOML file, as a register owner would.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
from pathlib import Path

import pytest

from clirun import run_cli
from oots import edm
from oots.edm import QueryError, QueryResponse
from oots.errors import ConfigError, RegisterError
from oots.provider.adapters import PythonRegister
from oots.provider.config import build_data_services
from oots.provider.intake import Intake
from oots.provider.matching import PersonQuery
from oots.settings import load_settings
from oots.validation import validate

from .parties import GARCIA, query_request

DOCS = Path(__file__).resolve().parents[3] / "docs" / "provider.md"
SERVICE_ID = "0e5d9a43-1f6b-4c1e-9d2a-7b3c4d5e6f70"
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)

SERVICE = f"""
[[provider.data_services]]
identifier = "{SERVICE_ID}"
evidence_type_classification = "https://sr.oots.tech.europa.eu/evidencetypeclassifications/ES/5c8e2b19-7a3d-4f60-9b1e-2d4c6a8f0e13"
titles = {{ EN = "Birth certificate" }}
model = "birth-certificate"
formats = ["application/pdf", "application/xml"]
level_of_assurance = "High"
preview = "never"
jurisdiction = "ES"
language = "ES"
register = "{{register}}"
authority = {{ identifier = "ESS9990001A", scheme_id = "urn:cef.eu:names:identifier:EAS:9920", name = "Registro" }}
"""


def _block(language: str, after: str) -> str:
    """The first ``language`` code block of docs/provider.md after the heading ``after``."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index(after) :]
    found = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert found is not None, f"no {language} block after {after!r}"
    return found.group(1)


def _civil_db(path: Path) -> Path:
    """The example's register, holding María José García Márquez and someone born the same day."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE person (id TEXT PRIMARY KEY, surname TEXT, forenames TEXT, born TEXT, eid TEXT,"
            " birthplace TEXT, entry_no TEXT, entered_on TEXT, office TEXT)"
        )
        conn.executemany(
            "INSERT INTO person VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ("c-1", "García Márquez", "María José", "1982-10-07", "ES/ES/12345678Z", "Sevilla", "1982/0417",
                 "1982-10-09", "Registro Civil de Sevilla"),
                ("c-2", "Pérez", "Juan", "1982-10-07", None, "Madrid", "1982/0418", "1982-10-08",
                 "Registro Civil de Madrid"),
            ],
        )  # fmt: skip
    conn.close()
    return path


@pytest.fixture
def example_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The docs' example adapter as ``civil_register.py`` in a directory on ``sys.path``."""
    code = _block("python", "## Write your own register")
    assert code.startswith("# civil_register.py\n")
    modules = tmp_path / "site"
    modules.mkdir()
    (modules / "civil_register.py").write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(modules))
    monkeypatch.delitem(__import__("sys").modules, "civil_register", raising=False)
    return modules


@pytest.fixture
def config(tmp_path: Path, example_module: Path, clean_env: pytest.MonkeyPatch) -> Path:
    """The docs' register table, its path pointed at the test's register, and a data service on it."""
    register = _block("toml", "Wired to a data service")
    register = register[: register.index("[[provider.data_services]]")]
    register = register.replace("/srv/civil/civil.db", str(_civil_db(tmp_path / "civil.db")).replace("\\", "/"))
    path = tmp_path / "node.toml"
    path.write_text('[node]\ncountry = "ES"\n\n' + register + SERVICE.replace("{register}", "civil"), encoding="utf-8")
    return path


def test_the_docs_example_matches_and_renders_through_the_cli(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    args = ["provider", "lookup", str(config), SERVICE_ID, "--family-name", "Garcia Marquez", "--given-name", "Maria"]
    code, out, err = run_cli(
        capsys, *args, "--born", "1982-10-07", "--render", "application/xml", "--out", str(out_dir)
    )
    assert code == 0, err
    assert out.startswith("MATCH MATCH:NAMES:family=EXACT,given=PARTIAL (candidates: 2)")
    [written] = out_dir.glob("birth-certificate-*.xml")
    xml = written.read_text(encoding="utf-8")
    for value in ("García Márquez", "1982/0417", "1982-10-09", "Registro Civil de Sevilla"):
        assert value in xml
    code, out, _ = run_cli(capsys, *args, "--born", "1982-10-08")
    assert (code, out.split()[0]) == (1, "NO_MATCH")
    code, out, _ = run_cli(capsys, "provider", "services", str(config))
    assert code == 0
    assert out.rstrip().endswith("register civil")


def test_a_node_answers_a_request_from_the_example_register(config: Path) -> None:
    [service] = build_data_services(load_settings(config))
    assert isinstance(service.register, PythonRegister)
    assert service.register.name == "civil"
    request = query_request(GARCIA, evidence_type=service.evidence_type(), fmt="application/pdf", issued=NOW)
    answer = Intake([service], clock=lambda: NOW).answer(edm.to_xml(request), sent=NOW)
    assert (answer.code, answer.reason) == (None, "MATCH:IDENTIFIER")
    assert validate(answer.payloads[0].data).valid
    assert isinstance(answer.document, QueryResponse)
    assert answer.payloads[1].data.startswith(b"%PDF-")


def test_the_examples_own_failures_are_register_errors(config: Path, tmp_path: Path) -> None:
    [service] = build_data_services(load_settings(config))
    (tmp_path / "civil.db").unlink()
    with pytest.raises(RegisterError, match=r"register civil failed \(OperationalError\)") as info:
        service.register.find_persons(PersonQuery("García", "María", dt.date(1982, 10, 7)))
    assert not info.value.timeout
    request = query_request(GARCIA, evidence_type=service.evidence_type(), issued=NOW)
    answer = Intake([service], clock=lambda: NOW).answer(edm.to_xml(request), sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0008", "REGISTER:FAILED")
    assert isinstance(answer.document, QueryError)


# --- configuration errors -----------------------------------------------------------------------------


def _write_module(directory: Path, name: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.py").write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.delitem(__import__("sys").modules, name, raising=False)


ADAPTERS = """
from oots.errors import NotFound
from oots.provider.matching import PersonRecord
from oots.provider.registers import RegisterRecord
import datetime as dt

class Good:
    def __init__(self, **options):
        self.options = options
    def find_persons(self, query, *, swapped_names=False):
        return [PersonRecord("1", "Dupont", "Marie", dt.date(1984, 2, 29))]
    def find_legal_persons(self, query):
        return []
    def fetch(self, record_id):
        raise NotFound("no such record")

class NoFetch:
    def find_persons(self, query, *, swapped_names=False):
        return []
    def find_legal_persons(self, query):
        return []

def refusing(**options):
    raise ValueError("cannot log in with " + options["password"])

not_callable = 42
"""


def _config(tmp_path: Path, register: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(
        '[node]\ncountry = "ES"\n\n[[provider.registers]]\nname = "civil"\nkind = "python"\n'
        + register
        + SERVICE.replace("{register}", "civil"),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: pytest.MonkeyPatch) -> Path:
    _write_module(tmp_path / "site", "my_adapters", ADAPTERS, monkeypatch)
    _write_module(tmp_path / "site", "broken_adapters", "import no_such_dependency_here\n", monkeypatch)
    _write_module(tmp_path / "site", "raising_adapters", "raise RuntimeError('half configured')\n", monkeypatch)
    return tmp_path


def test_options_and_secret_files_are_the_factorys_keyword_arguments(adapters: Path) -> None:
    (adapters / "secret").write_text("s3cret\n", encoding="utf-8")
    config = _config(
        adapters,
        f'factory = "my_adapters:Good"\noptions = {{ url = "db://x", retries = 3 }}\n'
        f'secret_files = {{ password = "{(adapters / "secret").as_posix()}" }}\n',
    )
    [service] = build_data_services(load_settings(config))
    assert isinstance(service.register, PythonRegister)
    assert service.register.adapter.options == {"url": "db://x", "retries": 3, "password": "s3cret"}


@pytest.mark.parametrize(
    ("register", "problem"),
    [
        ('factory = "no_such_module_here:Civil"', "there is no module no_such_module_here (install it"),
        ('factory = "no_such_package_here.registers:Civil"', "there is no module no_such_package_here.registers"),
        ('factory = "broken_adapters:Civil"', "needs module no_such_dependency_here, which is not installed"),
        (
            'factory = "raising_adapters:Civil"',
            "raising_adapters raised RuntimeError: half configured",
        ),
        ('factory = "my_adapters:Missing"', "module my_adapters has no attribute Missing"),
        ('factory = "my_adapters:not_callable"', "my_adapters:not_callable is not callable"),
        ('factory = "my_adapters:NoFetch"', "returned a NoFetch, which has no method fetch"),
        ('factory = "my_adapters:Good"\noptions = { nope = 1 }', None),
        ('factory = "my_adapters:refusing"\noptions = { password = "pw-in-message" }', "raised ValueError"),
        ('factory = "my_adapters:NoFetch"\noptions = { nope = 1 }', "raised TypeError"),
        ('factory = "my_adapters:Good"\nsecret_files = { password = "/no/such/secret" }', "cannot read the secret"),
    ],
)
def test_factory_problems_are_configuration_errors_naming_the_setting(
    adapters: Path, capsys: pytest.CaptureFixture[str], register: str, problem: str | None
) -> None:
    config = _config(adapters, register + "\n")
    settings = load_settings(config)
    if problem is None:  # Good takes any options
        build_data_services(settings)
        return
    with pytest.raises(ConfigError) as info:
        build_data_services(settings)
    [(path, reason)] = info.value.problems
    assert path.startswith("provider.registers.civil.")
    assert problem in reason
    assert str(info.value) == f"{path}: {reason}"
    # The node refuses to start the same way: the CLI exits 2 naming the setting.
    code, _, err = run_cli(capsys, "provider", "services", str(config))
    assert code == 2
    assert f"error: {path}: " in err


def test_a_secret_in_the_factorys_message_is_not_repeated(adapters: Path) -> None:
    (adapters / "secret").write_text("pw-from-file\n", encoding="utf-8")
    config = _config(
        adapters,
        f'factory = "my_adapters:refusing"\nsecret_files = {{ password = "{(adapters / "secret").as_posix()}" }}\n',
    )
    with pytest.raises(ConfigError) as info:
        build_data_services(load_settings(config))
    assert "pw-from-file" not in str(info.value)
    assert "cannot log in with ***" in str(info.value)


@pytest.mark.parametrize(
    ("register", "problem"),
    [
        ("", "a python register needs factory"),
        ('factory = "my_adapters.Good"', "is not module:attribute"),
        ('factory = "my_adapters:Good"\nfields = { family_name = "surname" }', "fields and legal_identifiers do not"),
        ('factory = "my_adapters:Good"\noptions = { "not a name" = 1 }', "cannot be a keyword argument"),
        (
            'factory = "my_adapters:Good"\noptions = { password = "x" }\nsecret_files = { password = "/s" }',
            "password: given in both options and secret_files",
        ),
    ],
)
def test_python_settings_are_checked_when_loaded(adapters: Path, register: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"provider\.registers\.0") as info:
        load_settings(_config(adapters, register + "\n"))
    assert problem in str(info.value)


def test_python_keys_are_refused_on_other_kinds(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    path = tmp_path / "node.toml"
    path.write_text(
        '[[provider.registers]]\nname = "r"\nkind = "csv"\npath = "r.csv"\noptions = { a = 1 }\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="options: only for kind"):
        load_settings(path)


def test_config_check_reports_factories_it_cannot_import(adapters: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _config(adapters, 'factory = "my_adapters:refusing"\n')  # importable; not called by the check
    code, out, _ = run_cli(capsys, "config", "check", str(good))
    assert code == 0, out
    bad = _config(adapters, 'factory = "no_such_module_here:Civil"\nsecret_files = { password = "/no/such/secret" }\n')
    code, _, err = run_cli(capsys, "config", "check", str(bad))
    assert code == 2
    assert "2 problem(s)" in err
    assert "provider.registers.civil.factory: there is no module no_such_module_here" in err
    assert "provider.registers.civil.secret_files.password: cannot read the secret file" in err


# --- the boundary: what the adapter raises and returns ------------------------------------------------


class Misbehaving:
    """An adapter with a bug of each kind, chosen by ``mode``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> object:
        if self.mode == "bug":
            raise KeyError(query.family_name)  # a message that quotes the person
        if self.mode == "slow":
            raise TimeoutError("the gateway did not answer")
        if self.mode == "register":
            raise RegisterError("register civil is down", register="civil")
        if self.mode == "dicts":
            return [{"id": "1"}]
        return None

    def find_legal_persons(self, query: object) -> object:
        return ()

    def fetch(self, record_id: str) -> object:
        return {"id": record_id}


QUERY = PersonQuery("García Márquez", "María José", dt.date(1982, 10, 7))


@pytest.mark.parametrize(
    ("mode", "message", "timeout"),
    [
        ("bug", r"register civil failed \(find_persons raised KeyError\)", False),
        ("slow", r"register civil failed \(find_persons raised TimeoutError\)", True),
        ("register", r"register civil is down", False),
        ("dicts", r"find_persons returned a dict in its list, not a PersonRecord", False),
        ("none", r"find_persons returned a NoneType, not a list of PersonRecord", False),
    ],
)
def test_what_an_adapter_raises_or_returns_wrongly_is_a_register_error(
    mode: str, message: str, timeout: bool, caplog: pytest.LogCaptureFixture
) -> None:
    register = PythonRegister(Misbehaving(mode), name="civil")
    with (
        caplog.at_level(logging.WARNING, logger="oots.provider.adapters"),
        pytest.raises(RegisterError, match=message) as info,
    ):
        register.find_persons(QUERY)
    assert info.value.timeout is timeout
    assert info.value.register == "civil"
    assert "García" not in caplog.text
    if mode == "bug":
        assert "test_python_register.py" in caplog.text  # where it was raised, for the adapter's author
    assert register.find_legal_persons(QUERY) == []  # type: ignore[arg-type]
    with pytest.raises(RegisterError, match="fetch returned a dict, not a RegisterRecord"):
        register.fetch("1")
