"""The docs' examples stay true: every TOML block parses, the keys of node configuration blocks are keys
the settings know, and links between the docs lead to files and headings that exist."""

from __future__ import annotations

import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from oots.network.topology import Topology
from oots.node.observe import _DB_GAUGES
from oots.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
_BLOCK = re.compile(r"```toml\n(.*?)```", re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _toml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            blocks.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings section a field holds (itself, or the items of a list, tuple or dict of them)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _unknown_keys(data: dict[str, Any], model: type[BaseModel], path: str) -> list[str]:
    names: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        names[name] = field.annotation
        if field.alias:
            names[field.alias] = field.annotation
    unknown = []
    for key, value in data.items():
        if key not in names:
            # a secret may come from a file instead: ``<secret>_file`` (oots.settings.Section)
            if not (key.endswith("_file") and key.removesuffix("_file") in names):
                unknown.append(f"{path}{key}")
            continue
        inner = _model_of(names[key])
        if inner is None:
            continue
        items = value if isinstance(value, list) else list(value.values()) if _is_mapping_of(names[key]) else [value]
        for item in items:
            if isinstance(item, dict):
                unknown += _unknown_keys(item, inner, f"{path}{key}.")
    return unknown


def _is_mapping_of(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or str(origin) == "types.UnionType":
        return any(_is_mapping_of(arg) for arg in typing.get_args(annotation))
    return origin is dict


BLOCKS = _toml_blocks()


def test_the_docs_have_toml_examples() -> None:
    assert len(BLOCKS) >= 10  # the scan below found the blocks (a broken pattern would pass on nothing)


@pytest.mark.parametrize(("where", "text"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_toml_example_parses_and_names_known_settings(where: str, text: str) -> None:
    data = tomllib.loads(text)  # a copied example must load (no duplicated keys, no placeholders outside strings)
    if isinstance(data.get("node"), list):
        Topology.model_validate(data)  # an ``oots demo --topology`` file
        return
    sections = set(Settings.model_fields)
    if not set(data) & sections or not set(data) <= sections:
        return  # not a node configuration (a Common Services data file, say)
    assert _unknown_keys(data, Settings, "") == [], f"{where}: keys the node's settings do not have"


def test_unknown_key_check_can_fail() -> None:
    assert _unknown_keys({"node": {"name": "x", "colour": "red"}}, Settings, "") == ["node.colour"]
    assert _unknown_keys({"admin": {"password_hash_file": "/run/x", "colour_file": "/run/y"}}, Settings, "") == [
        "admin.colour_file"
    ]
    assert _unknown_keys({"provider": {"data_services": [{"nope": 1}]}}, Settings, "") == [
        "provider.data_services.nope"
    ]


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_links_between_docs_resolve() -> None:
    broken = []
    for page in PAGES:
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


# --- docs/cli.md: one row per command of the real ``oots`` tree ----------------------------------------

_CLI_ROW = re.compile(r"^\| `oots ([^`]*)` \|", re.M)
_CLI_WORD = re.compile(r"[a-z][a-z0-9-]*")
_CLI_OPTION = re.compile(r"(?<![\w-])--?[a-z][a-z0-9-]*")


def _cli_commands() -> dict[tuple[str, ...], list[frozenset[str]]]:
    """Every command of ``oots`` (its words) with its options, each as the set of its spellings."""
    import typer.main

    from oots.cli import app

    found: dict[tuple[str, ...], list[frozenset[str]]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)  # a group (whichever click Typer bundles)
        if subcommands is not None:
            for name, sub in subcommands.items():
                if not sub.hidden:
                    walk(sub, (*path, name))
            return
        found[path] = [
            frozenset(param.opts) | frozenset(param.secondary_opts)
            for param in command.params
            if param.param_type_name == "option" and not param.hidden
        ]

    walk(typer.main.get_command(app), ())
    return found


def _cli_rows() -> list[tuple[tuple[str, ...], set[str]]]:
    """The table rows of docs/cli.md: the command's words and the options its synopsis names."""
    rows = []
    for synopsis in _CLI_ROW.findall((ROOT / "docs" / "cli.md").read_text(encoding="utf-8")):
        words = []
        for token in synopsis.split():
            if not _CLI_WORD.fullmatch(token):
                break
            words.append(token)
        rows.append((tuple(words), set(_CLI_OPTION.findall(synopsis.replace("\\|", " ")))))
    return rows


def test_cli_md_has_one_row_per_command() -> None:
    commands = {" ".join(words) for words in _cli_commands()}
    documented = [" ".join(words) for words, _ in _cli_rows()]
    assert len(commands) >= 30  # the walk found the tree (a broken walk would pass on nothing)
    assert sorted({d for d in documented if documented.count(d) > 1}) == [], "documented more than once"
    assert sorted(commands - set(documented)) == [], "commands docs/cli.md does not have"
    assert sorted(set(documented) - commands) == [], "rows of docs/cli.md for commands that do not exist"


def test_cli_md_rows_name_the_real_options() -> None:
    commands = _cli_commands()
    problems = []
    for words, named in _cli_rows():
        if words not in commands:
            continue  # reported by the test above
        command = "oots " + " ".join(words)
        options = [spellings for spellings in commands[words] if "--help" not in spellings]
        known = frozenset().union(*options)
        problems += [f"{command}: {name} is not an option of it" for name in sorted(named - known)]
        problems += [f"{command}: {'/'.join(sorted(o))} is not in its row" for o in options if not o & named]
    assert problems == []


def test_cli_md_check_can_fail() -> None:
    commands = _cli_commands()
    assert ("audit", "verify") in commands
    assert frozenset({"--head"}) in commands[("audit", "verify")]
    assert frozenset({"-o", "--output"}) in commands[("edm", "to-json")]


# --- docs/configuration.md: every setting once, with its type ------------------------------------------

_CONFIG_TABLE = re.compile(r"^(?:#+ )?`\[\[?([a-z0-9_.]+)\]\]?`")
_CONFIG_ROW = re.compile(r"^\| (`[^|]*?) \| ([^|]*?) \| ([^|]*?) \|")


def setting_type(annotation: Any) -> str:
    """A setting's type in the words of docs/configuration.md's type column."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None) and arg is not Ellipsis]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):  # ``X | None``: the type of X
        return setting_type(args[0]) if len(args) == 1 else " or ".join(setting_type(a) for a in args)
    if origin is typing.Literal:
        return "string"
    if origin in (list, tuple):
        return f"list of {setting_type(args[0])}s"
    if origin is dict:
        return "table" if args[1] is Any else f"table of {setting_type(args[1])}s"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    names = {str: "string", SecretStr: "secret", int: "integer", float: "number", bool: "boolean", Path: "path"}
    return names[annotation]


def _settings_sections() -> dict[str, dict[str, str]]:
    """Every settings table by its TOML path (``as4.partners``), with its keys and their types; a section
    model that appears under two keys (``authority``, ``other_authorities``) is documented once, first."""
    sections: dict[str, dict[str, str]] = {}
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], path: str) -> None:
        seen.add(model)
        keys = sections.setdefault(path, {}) if path else {}
        for name, field in model.model_fields.items():
            key = field.alias or name
            inner = _model_of(field.annotation)
            if path:
                keys[key] = setting_type(field.annotation)
            if inner is not None and inner not in seen:
                walk(inner, f"{path}.{key}" if path else key)

    walk(Settings, "")
    return sections


def _documented_settings() -> list[tuple[str, str, str, str]]:
    """(table, key, type, default) of every row of docs/configuration.md's settings tables; a row of
    several keys with as many comma-separated defaults gives each key its own."""
    rows = []
    table = ""
    for line in (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8").splitlines():
        if found := _CONFIG_TABLE.match(line):
            table = found.group(1)
        elif (row := _CONFIG_ROW.match(line)) and table:
            cell = re.sub(r"\(.*?\)", "", row.group(1))  # ``key_password` (`key_password_file`)``
            keys = re.findall(r"`([a-z_0-9]+)`", cell)
            defaults = row.group(3).split(", ") if len(keys) > 1 else [row.group(3)]
            if len(defaults) != len(keys):
                defaults = [row.group(3)] * len(keys)
            rows += [(table, key, row.group(2), default) for key, default in zip(keys, defaults, strict=True)]
    return rows


def test_configuration_md_documents_every_setting_once_with_its_type() -> None:
    real = _settings_sections()
    documented = _documented_settings()
    assert len(documented) >= 150  # the scan found the tables
    where = [f"{table}.{key}" for table, key, _, _ in documented]
    assert sorted({w for w in where if where.count(w) > 1}) == [], "documented more than once"
    expected = {f"{table}.{key}" for table, keys in real.items() for key in keys}
    assert sorted(expected - set(where)) == [], "settings docs/configuration.md does not have"
    assert sorted(set(where) - expected) == [], "documented, but not settings"
    wrong = [
        f"{table}.{key}: {kind!r}, but it is {real[table][key]!r}"
        for table, key, kind, _ in documented
        if kind != real[table][key]
    ]
    assert wrong == []


_UNCHECKED = object()


def _documented_default(cell: str) -> Any:
    """The value a default cell gives (``5``, ``false``, ```oots-node```, ``empty``, ``none``, ```[]```,
    ``required``), or ``_UNCHECKED`` for a default said in words ("the signing pair", "generated")."""
    cell = re.sub(r" \(.*\)$", "", cell.strip())  # ``104857600 (100 MiB)``
    words = {"required": PydanticUndefined, "(required)": PydanticUndefined, "empty": "", "none": None}
    if cell in words:
        return words[cell]
    literal = cell[1:-1] if re.fullmatch(r"`[^`]*`", cell) else cell
    try:
        return tomllib.loads(f"v = {literal}")["v"]
    except tomllib.TOMLDecodeError:
        return literal if literal != cell and "<" not in literal else _UNCHECKED


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def test_configuration_md_gives_the_real_defaults() -> None:
    models = {"": Settings}
    for name in _settings_sections():
        parent, _, key = name.rpartition(".")
        field = next(f for n, f in models[parent].model_fields.items() if (f.alias or n) == key)
        models[name] = _model_of(field.annotation)  # type: ignore[assignment]
    wrong, checked = [], 0
    for table, key, _, cell in _documented_settings():
        field = next(f for n, f in models[table].model_fields.items() if (f.alias or n) == key)
        real = _plain(field.get_default(call_default_factory=True))
        said = _documented_default(cell)
        if said is _UNCHECKED or (real in (None, "") and said not in (None, "")):
            continue  # said in words, or not set and something else decides (``the signing pair``)
        checked += 1
        if said != real:
            wrong.append(f"{table}.{key}: the docs say {cell}, the default is {real!r}")
    assert checked >= 120  # most defaults are literals the test reads
    assert wrong == []


def test_setting_types_read_as_the_docs_say() -> None:
    assert setting_type(int | None) == "integer"
    assert setting_type(tuple[Path, ...]) == "list of paths"
    assert setting_type(dict[str, str]) == "table of strings"
    assert setting_type(SecretStr | None) == "secret"
    assert "provider.data_services.matching" in _settings_sections()


# --- docs/operations.md: the metrics table is what /metrics exports -------------------------------------

_METRIC_ROW = re.compile(r"^\| `(oots_[a-z0-9_]+)` \| ([a-z]+) \| ([^|]*) \|", re.M)


def _documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for name, kind, labels in _METRIC_ROW.findall(text):
        assert name not in found, f"{name} has two rows"
        found[name] = (kind, frozenset(re.findall(r"`([a-z_]+)`", labels)))
    return found


def _exported_metrics(exposition: str) -> dict[str, tuple[str, frozenset[str]]]:
    kinds = dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M))
    labels: dict[str, set[str]] = {name: set() for name in kinds}
    for line in exposition.splitlines():
        if line.startswith("#") or not line:
            continue
        sample = re.match(r"([a-z0-9_]+?)(?:_bucket|_sum|_count)?(?:\{(.*)\})? ", line)
        assert sample is not None, line
        assert sample.group(1) in kinds, line
        labels[sample.group(1)] |= set(re.findall(r'([a-z_]+)="', sample.group(2) or "")) - {"le"}
    # a table without rows exports its family without samples: its labels are the registry's columns
    columns = {name: set(cols) for _, name, _, cols in _DB_GAUGES}
    return {name: (kind, frozenset(labels[name] or columns.get(name, set()))) for name, kind in kinds.items()}


def test_operations_md_lists_the_metrics_metrics_exports(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from oots.node import build_context
    from oots.node.observe import Metrics
    from oots.settings import load_settings

    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nname = "n"\ncountry = "BE"\ndata_dir = "{tmp_path.as_posix()}"\n', encoding="utf-8")
    ctx = build_context(load_settings(config))
    metrics = Metrics(ctx.database, node="n", certificates=[({"party": "n", "use": "signing"}, 2e9)])
    metrics.observe_request("GET", "/health", 200, 0.01)
    exported = _exported_metrics(metrics.exposition())
    assert {name for _, name, _, _ in _DB_GAUGES} <= set(exported), "a table was not read"
    assert _documented_metrics() == exported


# --- docs/requester.md: the portal API table is the API's calls -----------------------------------------

_API_ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `(/api/[^`]+)` \|", re.M)


def test_requester_md_lists_every_call_of_the_portal_api(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from requester.helpers import make_node

    from oots.cs.keys import generate_pki
    from oots.requester.api import create_api

    node = make_node(tmp_path, generate_pki())
    document = create_api(node.role.requester, node.ctx.database).openapi()
    real = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", f"/api{path}"))
        for path, operations in document["paths"].items()
        for method in operations
    }
    text = (ROOT / "docs" / "requester.md").read_text(encoding="utf-8")
    documented = [(method, re.sub(r"\{[^}]+\}", "{}", path)) for method, path in _API_ROW.findall(text)]
    assert len(real) >= 9  # the description was read
    assert sorted({row for row in documented if documented.count(row) > 1}) == [], "calls with two rows"
    assert sorted(real - set(documented)) == [], "calls docs/requester.md does not list"
    assert sorted(set(documented) - real) == [], "calls docs/requester.md lists that the API does not have"


# --- README: what ``make run`` starts --------------------------------------------------------------------


def test_readme_says_where_make_run_puts_each_service() -> None:
    from oots.network import load_topology
    from oots.network.plan import planned_ports

    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    base = int(re.search(r"^PORT\s*\?=\s*(\d+)$", makefile, re.M).group(1))  # type: ignore[union-attr]
    assert "oots demo --base-port $(PORT)" in makefile
    topology = load_topology("builtin:default")
    ports = planned_ports(topology, base)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    countries = [node.country for node in topology.node]
    nodes = [ports[f"{country.lower()}-node"] for country in countries]
    said = (
        f"Services on port {ports['cs']}, the eID test identity provider on {ports['eid']} and the "
        f"{', '.join(countries[:-1])} and {countries[-1]} nodes on {', '.join(map(str, nodes[:-1]))} and {nodes[-1]}"
    )
    assert said in readme
    assert f"`http://127.0.0.1:{nodes[0]}/portal/`" in readme


def test_oots_command_lines_in_the_docs_use_real_options() -> None:
    """Every ``oots ...`` in a code span or a command line of the docs gives only options its command has."""
    commands = _cli_commands()
    checked, problems = 0, []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        spans = re.findall(r"`([^`\n]+)`", text) + [
            line for line in text.splitlines() if re.match(r"\s*(\S+=\S+ )*(\.venv/bin/)?oots ", line)
        ]
        for span in spans:
            found = re.search(r"\boots((?: [a-z][a-z0-9-]*)+)(.*)", span)
            if found is None:
                continue
            words = found.group(1).split()
            command = next((tuple(words[:n]) for n in range(len(words), 0, -1) if tuple(words[:n]) in commands), None)
            if command is None:
                continue  # prose ("the oots node"), a group ("oots cs") or the root's options
            rest = " ".join(words[len(command) :]) + found.group(2)
            known = frozenset().union(*commands[command]) | {"--help", "-h"}
            named = _CLI_OPTION.findall(rest.replace("\\|", " "))
            problems += [f"{page.name}: oots {' '.join(command)} {o}" for o in named if o not in known]
            checked += 1
    assert checked >= 50  # the scan found the command lines
    assert problems == []
