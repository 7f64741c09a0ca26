"""OAuth2 client credentials at the portal API: the token endpoint, bearer tokens, scopes, hostile tokens."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cs.cs_helpers import AppTransport
from pydantic import ValidationError
from starlette.applications import Starlette

from oots.cs.keys import CsPki
from oots.requester.oauth import TokenIssuer
from oots.settings import RequesterClientSettings
from requester.helpers import API_KEY, Node, make_node, person_json

SECRET = "oauth-client-secret-0123456789abcdef"
TOKEN_URL = "/api/v1/oauth/token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def node(tmp_path: Path, pki: CsPki) -> Node:
    return make_node(tmp_path, pki, oauth_secret=SECRET)


def _app(node: Node) -> Starlette:
    return Starlette(routes=list(node.role.routes()))


@pytest.fixture
def client(node: Node) -> httpx.Client:
    return httpx.Client(transport=AppTransport(_app(node)), base_url="https://portal.example")


def token(client: httpx.Client, client_id: str = "oauth-portal", secret: str = SECRET, **form: str) -> httpx.Response:
    return client.post(TOKEN_URL, data={"grant_type": "client_credentials", **form}, auth=(client_id, secret))


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


def start(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.post(
        "/api/v1/exchanges", json={"procedure": "R1", "country": "BE", "person": person_json()}, headers=headers
    )


def test_a_token_by_http_basic_opens_the_api(client: httpx.Client) -> None:
    reply = token(client)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "exchanges:read exchanges:write"
    assert reply.headers["cache-control"] == "no-store"
    created = start(client, bearer(body["access_token"]))
    assert created.status_code == 202, created.text
    ex_id = created.json()["id"]
    assert client.get(f"/api/v1/exchanges/{ex_id}", headers=bearer(body["access_token"])).status_code == 200
    # the exchange belongs to the OAuth2 client: another client (by API key) does not see it
    assert client.get(f"/api/v1/exchanges/{ex_id}", headers=bearer(API_KEY)).status_code == 404


def test_a_token_by_form_fields(client: httpx.Client) -> None:
    reply = client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": "oauth-portal", "client_secret": SECRET},
    )
    assert reply.status_code == 200, reply.text
    assert start(client, bearer(reply.json()["access_token"])).status_code == 202


@pytest.mark.parametrize(("client_id", "secret"), [("oauth-portal", "wrong-secret"), ("nobody", SECRET), ("", "")])
def test_wrong_credentials_are_invalid_client(client: httpx.Client, client_id: str, secret: str) -> None:
    reply = token(client, client_id, secret)
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
    assert reply.headers["www-authenticate"].startswith("Basic")


def test_a_client_with_only_an_api_key_gets_no_token(client: httpx.Client) -> None:
    # "portal" has an API key and no client secret: its key is not a client secret
    assert token(client, "portal", API_KEY).json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("form", "headers", "error"),
    [
        ({"grant_type": "password"}, {}, "unsupported_grant_type"),
        ({"scope": "exchanges:read"}, {}, "invalid_request"),
        ({"grant_type": "client_credentials", "scope": "exchanges:delete"}, {}, "invalid_scope"),
    ],
)
def test_refused_grants(client: httpx.Client, form: dict[str, str], headers: dict[str, str], error: str) -> None:
    reply = client.post(TOKEN_URL, data=form, auth=("oauth-portal", SECRET), headers=headers)
    assert reply.status_code == 400
    assert reply.json()["error"] == error


def test_malformed_token_requests(client: httpx.Client) -> None:
    as_json = client.post(TOKEN_URL, json={"grant_type": "client_credentials"}, auth=("oauth-portal", SECRET))
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    both = client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": "oauth-portal", "client_secret": SECRET},
        auth=("oauth-portal", SECRET),
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")
    repeated = client.post(
        TOKEN_URL,
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers=FORM,
        auth=("oauth-portal", SECRET),
    )
    assert (repeated.status_code, repeated.json()["error"]) == (400, "invalid_request")
    huge = client.post(TOKEN_URL, content="scope=" + "x" * 10_000, headers=FORM, auth=("oauth-portal", SECRET))
    assert (huge.status_code, huge.json()["error"]) == (400, "invalid_request")
    garbage = client.post(TOKEN_URL, content=b"\xff\xfe", headers={**FORM, "Authorization": "Basic !!!"})
    assert garbage.status_code in (400, 401)


def test_scopes_limit_what_a_token_may_do(client: httpx.Client) -> None:
    read_only = token(client, scope="exchanges:read").json()["access_token"]
    refused = start(client, bearer(read_only))
    assert refused.status_code == 403
    assert "insufficient_scope" in refused.headers["www-authenticate"]
    # a client allowed only to read cannot get more
    assert token(client, "oauth-reader", scope="exchanges:write").json()["error"] == "invalid_scope"
    reader = token(client, "oauth-reader").json()
    assert reader["scope"] == "exchanges:read"
    assert start(client, bearer(reader["access_token"])).status_code == 403
    assert client.get("/api/v1/exchanges/unknown", headers=bearer(reader["access_token"])).status_code == 404


def test_an_expired_token_is_refused(client: httpx.Client, node: Node) -> None:
    access = token(client).json()["access_token"]
    node.clock.advance(299)
    assert start(client, bearer(access)).status_code == 202
    node.clock.advance(1)
    expired = start(client, bearer(access))
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert "expired" in expired.json()["detail"]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(access: str) -> dict[str, Any]:
    body = access.split(".")[1]
    loaded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return loaded


def test_tampered_and_forged_tokens_are_refused(client: httpx.Client, node: Node) -> None:
    access = token(client, "oauth-reader").json()["access_token"]
    head, _, signature = access.split(".")
    claims = _claims(access)
    widened = f"{head}.{_b64({**claims, 'scope': 'exchanges:read exchanges:write', 'sub': 'oauth-portal'})}.{signature}"
    longer = f"{head}.{_b64({**claims, 'exp': claims['exp'] + 86400})}.{signature}"
    unsigned = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(claims)}."
    other_node = TokenIssuer(b"k" * 32, issuer=claims["iss"], lifetime_seconds=300, clock=lambda: claims["iat"])
    foreign, _ = other_node.issue("oauth-portal", ["exchanges:read", "exchanges:write"])
    nested = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=") + f".{_b64(claims)}.{signature}"
    not_json = f"{base64.urlsafe_b64encode(bytes(range(256))).decode().rstrip('=')}.{_b64(claims)}.{signature}"
    bad_tokens = (widened, longer, unsigned, foreign, nested, not_json, access[:-2], "a.b.c", "..", access + ".x")
    for bad in bad_tokens:
        reply = start(client, bearer(bad))
        assert reply.status_code == 401, bad
        assert client.get("/api/v1/exchanges/x", headers=bearer(bad)).status_code == 401
    assert client.get("/api/v1/exchanges/x", headers=bearer(access)).status_code == 404  # the genuine one works


def test_the_openapi_description_names_both_ways(client: httpx.Client) -> None:
    schema = client.get("/api/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "https://portal.example/api/v1/oauth/token"
    assert set(flow["scopes"]) == {"exchanges:read", "exchanges:write"}
    create = schema["paths"]["/v1/exchanges"]["post"]
    assert {"oauth2": ["exchanges:write"]} in create["security"]
    assert "application/x-www-form-urlencoded" in schema["paths"]["/v1/oauth/token"]["post"]["requestBody"]["content"]


def test_a_client_needs_a_key_or_a_secret() -> None:
    with pytest.raises(ValidationError, match="api_key_sha256 or client_secret_sha256"):
        RequesterClientSettings(id="bare")


def test_oots_request_drives_an_exchange_with_client_credentials(node: Node, tmp_path: Path) -> None:
    from oots import edm
    from oots.requester.cli_driver import ClientCredentials, RequestOptions, drive
    from requester.helpers import Provider

    calls: list[str] = []
    app_transport = AppTransport(_app(node))

    class Counting(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(request.url.path)
            return app_transport.handle_request(request)

    auth = ClientCredentials("https://portal.example/api/v1/oauth/token", "oauth-portal", SECRET, clock=lambda: 0.0)
    http = httpx.Client(transport=Counting(), base_url="https://portal.example", auth=auth)

    def provider_answers(_seconds: float) -> None:
        node.drain()
        node.clock.advance(400)  # every token the node gave has expired: the driver must fetch a new one
        for message, payloads in list(node.outbox.sent):
            request = edm.parse(payloads[0].data)
            assert isinstance(request, edm.QueryRequest)
            if message.message_info.message_id not in answered:
                answered.add(message.message_info.message_id)
                node.deliver(Provider().evidence(message, request))

    answered: set[str] = set()
    opts = RequestOptions(procedure="R1", country="BE", person=person_json(), out=tmp_path / "out", preview=False)
    (pdf,) = drive(http, opts, say=lambda _: None, sleep=provider_answers)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert calls[0] == TOKEN_URL
    assert calls.count(TOKEN_URL) >= 2  # renewed after the 401


def test_oots_request_with_a_wrong_secret_is_unusable_input(node: Node, tmp_path: Path) -> None:
    from oots.errors import ConfigError
    from oots.requester.cli_driver import ClientCredentials, RequestOptions, drive

    auth = ClientCredentials("https://portal.example/api/v1/oauth/token", "oauth-portal", "wrong")
    http = httpx.Client(transport=AppTransport(_app(node)), base_url="https://portal.example", auth=auth)
    opts = RequestOptions(procedure="R1", country="BE", person=person_json(), out=tmp_path / "out")
    with pytest.raises(ConfigError, match="refused the client credentials"):
        drive(http, opts, say=lambda _: None)


def test_the_command_wants_a_secret_with_a_client_id(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from oots.cli import main

    person = tmp_path / "p.json"
    person.write_text(json.dumps(person_json()), encoding="utf-8")
    args = ["request", "--node", "http://127.0.0.1:9", "--procedure", "R1", "--country", "BE", "--person", str(person)]
    with pytest.raises(SystemExit) as info:
        main([*args, "--client-id", "oauth-portal"])
    assert info.value.code == 2
    assert "client secret" in capsys.readouterr().err


def test_the_generated_token_key_is_kept_and_an_empty_key_file_is_a_clear_error(tmp_path: Path) -> None:
    from oots.errors import ConfigError
    from oots.requester.oauth import token_key

    first = token_key(None, tmp_path)
    assert len(first) == 32
    assert token_key(None, tmp_path) == first  # read back, not generated again
    (tmp_path / "requester-token.key").write_text("", encoding="ascii")
    with pytest.raises(ConfigError, match="is empty"):
        token_key(None, tmp_path)
