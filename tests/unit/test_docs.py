"""The docs' examples stay true: every TOML block parses, the keys of node configuration blocks are keys
the settings know, and links between the docs lead to files and headings that exist."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from oots.network.topology import Topology
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
