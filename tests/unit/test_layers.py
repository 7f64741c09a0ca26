"""The one-way layers of docs/architecture.md, checked on the real imports.

The model (``oots.edm``), the rules (``oots.validation``) and the AS4 core (``oots.as4`` without its
transport and storage modules) must not pull in a web framework, an HTTP client or the database layer.
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys

import pytest

CORE_PACKAGES = ["oots.edm", "oots.validation", "oots.as4"]
#: Modules of those packages that are allowed to do I/O (transports, storage, command line).
IO_MODULES = (
    "oots.as4.http",
    "oots.as4.store",
    "oots.as4.models",
    "oots.as4.domibus",
    "oots.as4.service",
    "oots.as4.cli",
)
FORBIDDEN = (
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "requests",
    "aiohttp",
    "urllib3",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "jinja2",
    "oots.store",
    "oots.node",
    "oots.cli",
)


def core_modules(package: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    assert spec is not None
    assert spec.submodule_search_locations is not None
    names = [package]
    for info in pkgutil.walk_packages(spec.submodule_search_locations, prefix=package + "."):
        if not info.name.startswith(IO_MODULES):
            names.append(info.name)
    return names


def forbidden_imports(modules: list[str]) -> list[str]:
    """Import ``modules`` in a fresh interpreter; return the forbidden modules that came along."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    return sorted({m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + ".")})


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_core_package_imports_no_io_layer(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} does not exist yet")
    bad = forbidden_imports(core_modules(package))
    assert not bad, f"{package} imports I/O layers: {bad}"


def test_the_check_sees_a_web_framework() -> None:
    # the node's application (``oots.node`` itself loads its names at first use)
    assert "starlette" in forbidden_imports(["oots.node.app"])
