"""pysaml2 is loaded by the first SAML login, not by every node process (tens of MB, most of a second)."""

from __future__ import annotations

import subprocess
import sys


def test_the_oots_command_and_a_node_app_do_not_import_pysaml2() -> None:
    code = (
        "import sys, oots.cli, oots.node.app, oots.eid, oots.eid.testidp\n"
        "assert 'saml2' not in sys.modules, 'saml2 imported'\n"
        "from oots.eid import SamlServiceProvider\n"
        "from oots.eid.testidp import create_idp_app\n"
        "assert 'saml2' in sys.modules and callable(create_idp_app) and SamlServiceProvider.__name__\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
