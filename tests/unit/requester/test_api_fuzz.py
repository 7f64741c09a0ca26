"""The portal API fuzzed against its own OpenAPI description (schemathesis): never a server error."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from oots.cs.keys import generate_pki
from oots.requester.api import create_api
from requester.helpers import API_KEY, make_node

schemathesis = pytest.importorskip("schemathesis")

_DIR = Path(tempfile.mkdtemp(prefix="oots-requester-fuzz-"))
atexit.register(shutil.rmtree, _DIR, True)
_NODE = make_node(_DIR, generate_pki())
schema = schemathesis.openapi.from_asgi("/openapi.json", create_api(_NODE.role.requester, _NODE.ctx.database))


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    from schemathesis.checks import not_a_server_error

    case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"}, checks=[not_a_server_error])
