"""The requester across two real nodes, each its own OS process: the requester asks the provider over AS4.

``blue`` runs the requester role (``[node] roles = ["requester"]``, its portal API); ``red`` runs the
real provider role (``[node] roles = ["provider"]``): Belgium's sample data services, and, configured
beside them from the sample registers, the German registry office's birth certificates and the French
certificate of tax residence the demo catalogue lists. Both run as ``oots serve --with-worker``; a local
Common Services server (signed answers) runs in the test process with a copy of the demo catalogue in
which the Belgian, German and French access points are ``red``, the Polish one is a configured partner
that never answers (``gone``), the Italian one stays a partner ``blue`` does not know, and the Belgian
procedure V1 (registering a change of address) needs a proof of birth besides the proof of residence.

Without preview (the provider's preview space is not built yet): the whole journey, a ``DSD:ERR:0005``
question answered and the query repeated, two alternative lists, two requirements in sequence, an
unreachable provider, a provider that never answers. Every message that crossed the wire — requests
and answers — passes the official rules, and the two nodes' journals agree message by message.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from as4_flow_nodes import node_env, stop_all, write_configs

from oots import edm
from oots.as4 import profile
from oots.cs.datafile import parse_catalogue
from oots.cs.keys import generate_pki, write_pki
from oots.cs.server import create_app as create_cs_app
from oots.eid.testidp import IdpConfig, create_idp_app
from oots.errors import ConfigError
from oots.network.load import journal_agreement
from oots.network.local import ServerThread, free_port
from oots.provider.samples import load_people
from oots.requester.cli_driver import ClientCredentials, RequestOptions, drive
from oots.settings import load_settings
from oots.store import open_database
from oots.validation import validate

pytestmark = pytest.mark.slow

KEY = "flow-portal-key-0123456789"
CLIENT_SECRET = "flow-oauth-client-secret-9876543210"
DEMO = Path(__file__).resolve().parents[2] / "src" / "oots" / "cs" / "data" / "demo-catalogue.toml"
SR = "https://sr.oots.tech.ec.europa.eu"
BIRTH = f"{SR}/requirements/d1ffb6b9-e588-513c-b54c-2beaebbe6471"
RESIDENCE = f"{SR}/requirements/b3197a6d-d724-5c71-af5a-bd53846bc1cb"
BE_V1 = "1e4f7313-d0d5-5da9-8f5e-10a31ac19b43"
#: The demo catalogue's German birth certificates (one data service, a registry office per Land).
DE_BIRTHS = (
    "4c0595f9-ab59-59d2-aefb-c7d43bfd7106",
    f"{SR}/evidencetypeclassifications/DE/dcbe4598-1349-5dd2-be32-f70d074b7151",
)
#: The French certificate of tax residence: the first of the two alternative lists of a proof of residence.
FR_TAX_RESIDENCE = (
    "72b29ad4-7018-5f7d-89f4-9234ec7a49a8",
    f"{SR}/evidencetypeclassifications/FR/64f876df-4a9b-5591-81e0-c07efc6d7aef",
)
RESPONSE_TIMEOUT = 10
#: How long the provider keeps a preview open (the user abandons one in a test: it must be short).
PREVIEW_TIMEOUT = 12


def _catalogue() -> str:
    text = DEMO.read_text(encoding="utf-8")
    for country in ("BE", "DE", "FR"):
        text = text.replace(f'id = "AP_{country}_01"', 'id = "red_gw"')
    text = text.replace('id = "AP_PL_01"', 'id = "gone_gw"')
    # Belgium's V1 (registering a change of address) also needs a proof of birth: a second requirement.
    text, n = re.subn(r'(id = "' + re.escape(BIRTH) + r'"\n(?:.*\n){2}procedures = \[)', rf'\1"{BE_V1}", ', text)
    assert n == 1
    return text


def _blue(config: Path, ports: dict[str, int], trust: Path, pki_dir: Path) -> None:
    text = config.read_text(encoding="utf-8").replace(
        'name = "blue"\n',
        f'name = "blue"\ncountry = "BE"\nroles = ["requester"]\nbase_url = "http://127.0.0.1:{ports["blue"]}"\n',
    )
    red = text[text.index("[[as4.partners]]") :]
    gone = red.replace('name = "red"', 'name = "gone"').replace('party_id = "red_gw"', 'party_id = "gone_gw"')
    gone = gone.replace(f"127.0.0.1:{ports['red']}/as4", f"127.0.0.1:{ports['gone']}/as4")
    text += f"""
{gone}
[common_services]
environment = "local"
eb_url = "http://127.0.0.1:{ports["cs"]}"
dsd_url = "http://127.0.0.1:{ports["cs"]}/dsd"
trust_roots = ["{trust.as_posix()}"]

[requester]
identifier = "NL12345678"
scheme_id = "urn:cef.eu:names:identifier:EAS:0106"
name = "Flow test portal"
response_timeout_seconds = {RESPONSE_TIMEOUT}
preview_timeout_seconds = {PREVIEW_TIMEOUT * 4}
allow_http_preview_hosts = ["127.0.0.1"]

[[requester.clients]]
id = "portal"
api_key_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"

[[requester.clients]]
id = "oauth-portal"
client_secret_sha256 = "{hashlib.sha256(CLIENT_SECRET.encode()).hexdigest()}"
"""
    config.write_text(text, encoding="utf-8")


def _red(config: Path, ports: dict[str, int]) -> None:
    text = config.read_text(encoding="utf-8").replace(
        'name = "red"\n',
        f'name = "red"\ncountry = "BE"\nroles = ["provider"]\nbase_url = "http://127.0.0.1:{ports["red"]}"\n',
    )
    text += f"""
[eid]
issuer = "http://127.0.0.1:{ports["idp"]}"
client_id = "red"
session_secret = "requester-flow-test-secret-0123456789"
required_level = "low"

[provider]
samples = true
preview_timeout_seconds = {PREVIEW_TIMEOUT}
preview_return_origins = ["http://127.0.0.1:{ports["blue"]}"]

[[provider.registers]]
name = "de-births"
kind = "sample"
source = "births"
country = "DE"

[[provider.registers]]
name = "fr-residence"
kind = "sample"
source = "residence"
country = "FR"

[[provider.data_services]]
identifier = "{DE_BIRTHS[0]}"
evidence_type_classification = "{DE_BIRTHS[1]}"
titles = {{ EN = "Birth certificate", DE = "Geburtsurkunde" }}
model = "birth-certificate"
formats = ["application/pdf", "application/xml"]
level_of_assurance = "High"
jurisdiction = "DE"
jurisdiction_nuts = "DE6"
language = "DE"
register = "de-births"
authority.identifier = "02-CivilRegistration-66"
authority.scheme_id = "urn:cef.eu:names:identifier:EAS:0204"
authority.name = "Registry Office Hamburg-Mitte"

[[provider.data_services]]
identifier = "{FR_TAX_RESIDENCE[0]}"
evidence_type_classification = "{FR_TAX_RESIDENCE[1]}"
titles = {{ EN = "Certificate of tax residence", FR = "Attestation de résidence fiscale" }}
model = "residence-certificate"
formats = ["application/pdf", "application/xml"]
jurisdiction = "FR"
language = "FR"
register = "fr-residence"
authority.identifier = "11000201100044"
authority.scheme_id = "urn:cef.eu:names:identifier:EAS:0009"
authority.name = "Directorate General of Public Finances (DGFiP)"
"""
    config.write_text(text, encoding="utf-8")


def _start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "oots", "serve", str(config), "--port", str(port), "--with-worker"],
            stdout=out,
            stderr=out,
            env=node_env(),
        )


def _ready(proc: subprocess.Popen[bytes], config: Path, port: int, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{config.stem} exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{config.stem} did not start: {log.read_text(errors='replace')[-3000:]}")


@dataclass
class Network:
    api: httpx.Client
    base_url: str
    red_url: str
    blue_config: Path
    red_config: Path
    blue_db: Path
    red_db: Path


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    directory = tmp_path_factory.mktemp("reqflow")
    ports = {name: free_port() for name in ("blue", "red", "cs", "gone", "idp")}
    configs = write_configs(directory, ports, retry="[0.5, 1, 2]")
    pki = generate_pki()
    trust = next(p for p in write_pki(pki, directory / "cs").values() if p.name == "cs-trust.pem")
    _blue(configs["blue"], ports, trust, directory / "cs")
    _red(configs["red"], ports)
    catalogue = parse_catalogue(tomllib.loads(_catalogue()))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        idp = create_idp_app(IdpConfig(issuer=f"http://127.0.0.1:{ports['idp']}", data_dir=directory / "idp"))
        with ServerThread(create_cs_app(catalogue, pki.signer()), ports["cs"]), ServerThread(idp, ports["idp"]):
            for name in ("red", "blue"):  # both start at once
                procs.append(_start(configs[name], ports[name], directory / f"{name}.log"))
            for name, proc in zip(("red", "blue"), procs, strict=True):
                _ready(proc, configs[name], ports[name], directory / f"{name}.log")
            with httpx.Client(
                base_url=f"http://127.0.0.1:{ports['blue']}", headers={"Authorization": f"Bearer {KEY}"}, timeout=20
            ) as api:
                yield Network(
                    api,
                    f"http://127.0.0.1:{ports['blue']}",
                    f"http://127.0.0.1:{ports['red']}",
                    configs["blue"],
                    configs["red"],
                    directory / "blue" / "oots.db",
                    directory / "red" / "oots.db",
                )
    finally:
        stop_all(procs)


# ---- the portal's side ----------------------------------------------------------------------------


def person(family_name: str, country: str) -> dict[str, Any]:
    found = next(p for p in load_people() if p.family_name == family_name and p.register_country == country)
    return {
        "natural_person": {
            "level_of_assurance": "High",
            "identifier": {"value": found.identifier, "scheme_id": "eidas"},
            "family_name": found.family_name,
            "given_name": found.given_name,
            "date_of_birth": found.date_of_birth.isoformat(),
        }
    }


def start(net: Network, procedure: str, country: str, who: dict[str, Any]) -> str:
    body = {"procedure": procedure, "country": country, "person": who, "preview": False}
    created = net.api.post("/api/v1/exchanges", json=body)
    assert created.status_code == 202, created.text
    return str(created.json()["id"])


def wait(net: Network, ex_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = net.api.get(f"/api/v1/exchanges/{ex_id}").json()
        if view["state"] in states or time.monotonic() > deadline:
            return view
        time.sleep(0.05)


WAITING = {"awaiting_user_choice", "awaiting_explicit_request", "failed", "expired"}
FINAL = {"completed", "failed", "expired"}


def choose(net: Network, ex_id: str, choices: dict[str, Any]) -> dict[str, Any]:
    reply = net.api.post(f"/api/v1/exchanges/{ex_id}/choices", json={"requirements": choices})
    assert reply.status_code == 202, reply.text
    return wait(net, ex_id, WAITING)


def explicit_request(net: Network, ex_id: str) -> dict[str, Any]:
    reply = net.api.post(f"/api/v1/exchanges/{ex_id}/explicit-request")
    assert reply.status_code == 202, reply.text
    return wait(net, ex_id, FINAL, timeout=RESPONSE_TIMEOUT + 60)


def documents(net: Network, view: dict[str, Any]) -> list[bytes]:
    out = []
    for evidence in view["evidence"]:
        got = net.api.get(f"/api/v1/exchanges/{view['id']}/evidence/{evidence['id']}")
        assert got.status_code == 200
        assert got.headers["content-type"].startswith(evidence["media_type"])
        out.append(got.content)
    return out


# ---- what crossed the wire ------------------------------------------------------------------------


def received(db: Path) -> list[tuple[str, str, bytes]]:
    """(message id, action, RegRep document) of every message the node's access point received."""
    con = sqlite3.connect(db, timeout=10)
    try:
        rows = con.execute(
            "SELECT i.message_id, i.header, p.data FROM as4_inbound i JOIN as4_inbound_payloads p"
            " ON p.inbound_id = i.id WHERE p.mime_type = ? ORDER BY i.id",
            (profile.REGREP_MIME_TYPE,),
        ).fetchall()
    finally:
        con.close()
    return [(str(m), str(json.loads(h)["action"]), bytes(d)) for m, h, d in rows]


def journal(db: Path, exchange: str) -> list[tuple[str, str | None, list[str]]]:
    con = sqlite3.connect(db, timeout=10)
    try:
        rows = con.execute(
            "SELECT event, outcome, message_ids FROM audit_entries WHERE exchange_id = ? ORDER BY seq", (exchange,)
        ).fetchall()
    finally:
        con.close()
    return [(str(e), o, json.loads(m)) for e, o, m in rows]


#: The rules that a PreviewLocation be https (request, answer): a loopback network's preview space is plain http.
_LOOPBACK_PREVIEW_RULES = frozenset({"R-EDM-REQ-C005", "R-EDM-ERR-C019"})


def passes_the_rules(document: bytes) -> None:
    report = validate(document)
    blocking = {f.rule for f in report.findings if f.blocking}
    tolerated = _LOOPBACK_PREVIEW_RULES if b"http://127.0.0.1:" in document else frozenset()
    assert blocking <= tolerated, [f.as_dict() for f in report.findings if f.blocking]


def sent_requests(net: Network, exchange: str) -> list[edm.QueryRequest]:
    """The requests of one exchange as the provider received them (each passing the official rules)."""
    ids = [ids[0] for event, _, ids in journal(net.blue_db, exchange) if event == "request_sent"]
    by_id = {m: doc for m, _, doc in received(net.red_db)}
    out = []
    for message_id in ids:
        passes_the_rules(by_id[message_id])
        doc = edm.parse(by_id[message_id])
        assert isinstance(doc, edm.QueryRequest)
        out.append(doc)
    return out


# ---- the journeys ---------------------------------------------------------------------------------


def test_the_whole_journey_without_preview(network: Network) -> None:
    ex_id = start(network, "R1", "BE", person("Peeters", "BE"))
    view = wait(network, ex_id, WAITING)
    assert view["state"] == "awaiting_explicit_request", view
    (requirement,) = view["requirements"]
    assert requirement["id"] == BIRTH
    view = explicit_request(network, ex_id)
    assert view["state"] == "completed", view
    (pdf,) = documents(network, view)
    assert pdf.startswith(b"%PDF")
    (request,) = sent_requests(network, ex_id)
    assert request.explicit_request_given is True
    assert request.possibility_for_preview is False
    assert [e for e, _, _ in journal(network.blue_db, ex_id)] == [
        "exchange_created",
        "discovery_done",
        "explicit_request_given",
        "request_sent",
        "evidence_received",
    ]


def test_a_follow_up_question_answered_and_the_query_repeated(network: Network) -> None:
    ex_id = start(network, "R1", "DE", person("Müller", "DE"))
    view = wait(network, ex_id, WAITING)
    assert view["state"] == "awaiting_user_choice", view
    (requirement,) = view["requirements"]
    ((classification, slot),) = requirement["types"].items()
    assert classification == DE_BIRTHS[1]
    (question,) = slot["questions"]
    assert (question["kind"], question["level"]) == ("jurisdiction", "NUTS1")
    assert slot["providers"] == []
    view = choose(network, ex_id, {BIRTH: {"answers": {classification: {question["id"]: "DE6"}}}})
    assert view["state"] == "awaiting_explicit_request", view
    (provider,) = view["requirements"][0]["types"][classification]["providers"]
    assert provider["name"] == "Registry Office Hamburg-Mitte"
    view = explicit_request(network, ex_id)
    assert view["state"] == "completed", view
    (request,) = sent_requests(network, ex_id)
    assert request.evidence_provider.names[0].value == "Registry Office Hamburg-Mitte"
    assert documents(network, view)[0].startswith(b"%PDF")


def test_two_alternative_lists_the_user_picks_one(network: Network) -> None:
    ex_id = start(network, "S1", "FR", person("Lefèvre", "FR"))
    view = wait(network, ex_id, WAITING)
    assert view["state"] == "awaiting_user_choice", view
    (requirement,) = view["requirements"]
    assert requirement["id"] == RESIDENCE
    assert len(requirement["lists"]) == 2
    assert requirement["chosen_list"] is None
    tax = next(
        lst
        for lst in requirement["lists"]
        if [t["classification"] for t in lst["evidence_types"]] == [FR_TAX_RESIDENCE[1]]
    )
    view = choose(network, ex_id, {RESIDENCE: {"list": tax["id"]}})
    assert view["state"] == "awaiting_explicit_request", view
    assert view["requirements"][0]["chosen_list"] == tax["id"]
    view = explicit_request(network, ex_id)
    assert view["state"] == "completed", view
    (request,) = sent_requests(network, ex_id)
    assert (
        request.evidence_request.evidence_type_classification.rpartition("/")[2]
        == FR_TAX_RESIDENCE[1].rpartition("/")[2]
    )


def test_two_requirements_in_sequence(network: Network) -> None:
    ex_id = start(network, "V1", "BE", person("Peeters", "BE"))
    view = wait(network, ex_id, WAITING)
    assert view["state"] == "awaiting_explicit_request", view
    assert {r["id"] for r in view["requirements"]} == {BIRTH, RESIDENCE}
    view = explicit_request(network, ex_id)
    assert view["state"] == "completed", view
    assert {e["requirement"] for e in view["evidence"]} == {BIRTH, RESIDENCE}
    first, second = sent_requests(network, ex_id)
    assert first.id != second.id
    steps = [e for e, _, _ in journal(network.blue_db, ex_id)]
    # one request at a time: the second goes out only after the first one's evidence arrived
    assert steps[-4:] == ["request_sent", "evidence_received", "request_sent", "evidence_received"]


def test_an_unreachable_provider(network: Network) -> None:
    ex_id = start(network, "R1", "IT", person("Peeters", "BE"))
    view = wait(network, ex_id, WAITING)
    assert view["state"] == "awaiting_explicit_request", view
    view = explicit_request(network, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "provider_unreachable"), view
    assert view["reason_text"] == "The authority holding the evidence could not be reached; please try again later."
    assert "AP_IT_01" in view["detail"]
    steps = journal(network.blue_db, ex_id)
    assert steps[-1][:2] == ("exchange_failed", "provider_unreachable")
    assert "request_sent" not in [e for e, _, _ in steps]


def test_a_provider_that_never_answers_times_out(network: Network) -> None:
    ex_id = start(network, "R1", "PL", person("Peeters", "BE"))
    view = wait(network, ex_id, WAITING)
    assert view["state"] == "awaiting_explicit_request", view
    view = explicit_request(network, ex_id)
    assert (view["state"], view["reason"]) == ("expired", "timeout"), view
    assert view["detail"] == "the provider did not answer in time"
    steps = [(e, o) for e, o, _ in journal(network.blue_db, ex_id)]
    assert steps[-2:] == [("request_sent", "sent"), ("timeout", "timeout")]


def test_oots_request_with_oauth2_client_credentials(network: Network, tmp_path: Path) -> None:
    who = tmp_path / "person.json"
    who.write_text(json.dumps(person("Van den Broeck", "BE")), encoding="utf-8")
    env = node_env()
    command = [sys.executable, "-m", "oots", "request", "--node", network.base_url, "--procedure", "R1"]
    command += ["--country", "BE", "--person", str(who), "--no-preview", "--out", str(tmp_path / "out")]
    wrong = ClientCredentials(f"{network.base_url}/api/v1/oauth/token", "oauth-portal", "wrong")
    with httpx.Client(base_url=network.base_url, auth=wrong) as http, pytest.raises(ConfigError, match="refused"):
        drive(http, RequestOptions("R1", "BE", person("Van den Broeck", "BE"), tmp_path / "no"), say=lambda _: None)
    done = subprocess.run(
        [*command, "--client-id", "oauth-portal"],
        check=False,
        env={**env, "OOTS_CLIENT_SECRET": CLIENT_SECRET},
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    (pdf,) = (tmp_path / "out").iterdir()
    assert pdf.read_bytes().startswith(b"%PDF")
    # the exchange belongs to the OAuth2 client: the API key's client does not see it
    assert b"exchange " in done.stdout
    ex_id = done.stdout.decode().split("exchange ", 1)[1].split()[0]
    assert network.api.get(f"/api/v1/exchanges/{ex_id}").status_code == 404


# ---- with the provider's preview space ----------------------------------------------------------


def to_preview(net: Network) -> tuple[str, dict[str, Any]]:
    """An exchange that allows a preview, up to the provider's PreviewLocation."""
    body = {
        "procedure": "R1",
        "country": "BE",
        "person": person("Peeters", "BE"),
        "preview": True,
        "return_url": "https://portal.example/applications/7",
    }
    created = net.api.post("/api/v1/exchanges", json=body)
    assert created.status_code == 202, created.text
    ex_id = str(created.json()["id"])
    assert wait(net, ex_id, WAITING)["state"] == "awaiting_explicit_request"
    assert net.api.post(f"/api/v1/exchanges/{ex_id}/explicit-request").status_code == 202
    view = wait(net, ex_id, {"awaiting_preview", *FINAL})
    assert view["state"] == "awaiting_preview", view
    assert view["preview"]["method"] == "GET"
    assert view["preview"]["location"].startswith(f"{net.red_url}/preview/")
    return ex_id, view


def decide(net: Network, ex_id: str, location: str, decision: str) -> httpx.Response:
    """The user at the preview space: logs in with eID (the test IdP), decides on the one document."""
    back = f"{net.base_url}/requester/return/{ex_id}"
    with httpx.Client(follow_redirects=True, timeout=30) as user:
        page = user.get(f"{location}?returnurl={back}")
        assert "/login/" in str(page.url)  # at the identity provider
        page = user.post(str(page.url), data={"subject": "be-1", "level": "high"})
        assert page.status_code == 200, page.text[:500]
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert csrf is not None
        assert action is not None
        shown = re.findall(r'<iframe class="pdf" src="([^"]+)"', page.text)
        assert len(shown) == 1
        pdf = user.get(net.red_url + shown[0]).content
        done = user.post(
            net.red_url + action.group(1), data={"csrf": csrf.group(1), "d0": decision}, follow_redirects=False
        )
        assert done.status_code == 303
        assert done.headers["location"] == back
        home = user.get(back, follow_redirects=False)  # the requester's return location sends the user home
        assert home.status_code == 303
        assert home.headers["location"] == f"https://portal.example/applications/7?exchange={ex_id}"
    return httpx.Response(200, content=pdf)


def test_preview_accepted(network: Network) -> None:
    ex_id, view = to_preview(network)
    location = view["preview"]["location"]
    shown = decide(network, ex_id, location, "accept")
    view = wait(network, ex_id, FINAL)
    assert view["state"] == "completed", view
    (document,) = documents(network, view)
    assert document == shown.content  # exactly what the user saw
    first, second = sent_requests(network, ex_id)
    assert first.possibility_for_preview is True
    assert first.preview_location is None
    assert second.preview_location == location
    steps = [e for e, _, _ in journal(network.blue_db, ex_id)]
    # the user's way back and the evidence race each other; the return is journaled either way
    preview = ["request_sent", "preview_required", "request_sent"]
    assert steps[-5:-2] == preview, steps
    assert sorted(steps[-2:]) == ["evidence_received", "preview_returned"], steps


def test_preview_refused(network: Network) -> None:
    ex_id, view = to_preview(network)
    decide(network, ex_id, view["preview"]["location"], "refuse")
    view = wait(network, ex_id, FINAL)
    assert (view["state"], view["reason"]) == ("failed", "preview_refused"), view
    assert view["evidence"] == []


def test_preview_abandoned_times_out(network: Network) -> None:
    ex_id, _ = to_preview(network)  # the user never goes there
    view = wait(network, ex_id, FINAL, timeout=PREVIEW_TIMEOUT + 60)
    assert (view["state"], view["reason"]) == ("failed", "timeout"), view
    assert view["detail"].startswith("EDM:ERR:0005")
    assert [(e, o) for e, o, _ in journal(network.blue_db, ex_id)][-2:] == [
        ("error_received", "EDM:ERR:0005"),
        ("exchange_failed", "timeout"),
    ]


def test_every_message_passed_the_rules_and_the_journals_agree(network: Network, clean_env: pytest.MonkeyPatch) -> None:
    answers = received(network.blue_db)
    requests = received(network.red_db)
    assert answers
    assert len(requests) == len(answers)
    for _, action, document in requests + answers:
        assert action in (
            profile.ACTION_EXECUTE_QUERY_REQUEST,
            profile.ACTION_EXECUTE_QUERY_RESPONSE,
            profile.ACTION_EXCEPTION_RESPONSE,
        )
        passes_the_rules(document)
    requester = open_database(load_settings(network.blue_config))
    provider = open_database(load_settings(network.red_config))
    try:
        agreement = journal_agreement(requester, provider, partner="red")
    finally:
        requester.dispose()
        provider.dispose()
    assert agreement.ok, agreement
    assert agreement.requests_sent == len(answers)
