"""ID token checks: one refusal per way a token can be wrong, with the exact reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from eid_helpers import IDP, Network, run

from oots.eid import AssuranceTooLow, LevelOfAssurance, LoginRefused, NaturalPerson
from oots.eid.attributes import identity_to_claims
from oots.eid.identity import Identity
from oots.eid.oidc import (
    Flow,
    OidcClient,
    ProviderMetadata,
    authorization_url,
    identity_from_claims,
    new_flow,
    pkce_challenge,
    verify_id_token,
)
from oots.eid.testidp.keys import SigningKey

NOW = 1_800_000_000.0
CLIENT = "portal"
NONCE = "the-nonce"


def person_claims(level: LevelOfAssurance = LevelOfAssurance.SUBSTANTIAL) -> dict[str, Any]:
    subject = NaturalPerson("BE/BE/123", "Peeters", "Lucas", dt.date(1985, 3, 14))
    identity = Identity(subject, level, IDP, "oidc", dt.datetime.fromtimestamp(NOW, dt.UTC))
    return identity_to_claims(identity)


def make_token(key: SigningKey, **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": IDP,
        "aud": CLIENT,
        "sub": "s1",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "nonce": NONCE,
        **person_claims(),
    }
    signing_key = changes.pop("signing_key", key.private_key)
    headers = {"kid": changes.pop("kid", key.kid)}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(claims, signing_key, algorithm="RS256", headers=headers)


def keyset(key: SigningKey) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict({"keys": [key.jwk()]})


def check(token: str, key: SigningKey) -> dict[str, Any]:
    return verify_id_token(token, keyset(key), issuer=IDP, client_id=CLIENT, nonce=NONCE, now=NOW)


def refused(token: str, key: SigningKey) -> LoginRefused:
    with pytest.raises(LoginRefused) as info:
        check(token, key)
    return info.value


def test_a_good_token_passes(idp_key: SigningKey) -> None:
    claims = check(make_token(idp_key), idp_key)
    identity = identity_from_claims(claims, LevelOfAssurance.SUBSTANTIAL)
    assert identity.subject.identifier == "BE/BE/123"
    assert identity.level is LevelOfAssurance.SUBSTANTIAL


def test_wrong_signature(idp_key: SigningKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    err = refused(make_token(idp_key, signing_key=other), idp_key)
    assert err.code == "signature"
    assert "signature does not verify" in err.message


def test_flipped_byte_in_the_payload(idp_key: SigningKey) -> None:
    head, payload, sig = make_token(idp_key).split(".")
    forged = jwt.utils.base64url_encode(jwt.utils.base64url_decode(payload).replace(b"Peeters", b"Peeterz")).decode()
    assert refused(f"{head}.{forged}.{sig}", idp_key).code == "signature"


def test_unknown_key_id(idp_key: SigningKey) -> None:
    assert refused(make_token(idp_key, kid="not-published"), idp_key).code == "signature"


def test_wrong_issuer(idp_key: SigningKey) -> None:
    err = refused(make_token(idp_key, iss="http://evil.test"), idp_key)
    assert err.code == "issuer"


def test_wrong_audience(idp_key: SigningKey) -> None:
    err = refused(make_token(idp_key, aud="another-app"), idp_key)
    assert err.code == "audience"
    assert "another application" in err.message


def test_several_audiences_without_azp(idp_key: SigningKey) -> None:
    assert refused(make_token(idp_key, aud=[CLIENT, "other"]), idp_key).code == "audience"


def test_wrong_nonce(idp_key: SigningKey) -> None:
    assert refused(make_token(idp_key, nonce="someone-elses"), idp_key).code == "nonce"


def test_missing_nonce(idp_key: SigningKey) -> None:
    assert refused(make_token(idp_key, nonce=None), idp_key).code == "nonce"


def test_expired(idp_key: SigningKey) -> None:
    err = refused(make_token(idp_key, exp=int(NOW) - 61), idp_key)
    assert err.code == "expired"
    assert "expired" in err.message


def test_issued_in_the_future(idp_key: SigningKey) -> None:
    assert refused(make_token(idp_key, iat=int(NOW) + 3600, exp=int(NOW) + 7200), idp_key).code == "not_yet_valid"


def test_unsigned_token(idp_key: SigningKey) -> None:
    token = jwt.encode({"iss": IDP, "aud": CLIENT, "nonce": NONCE, "exp": NOW + 60}, None, algorithm="none")
    assert refused(token, idp_key).code == "algorithm"


def test_hmac_with_the_public_key_is_refused(idp_key: SigningKey) -> None:
    token = jwt.encode({"iss": IDP}, "secret-that-is-long-enough-for-hs256-ok", algorithm="HS256")
    assert refused(token, idp_key).code == "algorithm"


def test_not_a_jwt(idp_key: SigningKey) -> None:
    assert refused("not.a.jwt", idp_key).code == "malformed"


def test_downgraded_level_is_refused(idp_key: SigningKey) -> None:
    claims = check(make_token(idp_key, acr=LevelOfAssurance.LOW.uri), idp_key)
    with pytest.raises(AssuranceTooLow) as info:
        identity_from_claims(claims, LevelOfAssurance.SUBSTANTIAL)
    assert info.value.code == "assurance"
    assert info.value.got is LevelOfAssurance.LOW
    assert "needs at least Substantial" in info.value.message


def test_missing_level_is_refused(idp_key: SigningKey) -> None:
    claims = check(make_token(idp_key, acr=None), idp_key)
    with pytest.raises(LoginRefused) as info:
        identity_from_claims(claims, LevelOfAssurance.LOW)
    assert info.value.code == "assurance"


def test_pkce_challenge_matches_rfc7636_example() -> None:
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_authorization_url_carries_state_nonce_pkce_and_levels() -> None:
    meta = ProviderMetadata(IDP, IDP + "/authorize", IDP + "/token", IDP + "/jwks")
    flow = new_flow("/me", LevelOfAssurance.SUBSTANTIAL, NOW)
    url = httpx.URL(authorization_url(meta, CLIENT, "http://sp.test/cb", flow))
    params = dict(url.params)
    assert params["state"] == flow.state
    assert params["nonce"] == flow.nonce
    assert params["code_challenge"] == pkce_challenge(flow.code_verifier)
    assert params["acr_values"].split() == [LevelOfAssurance.SUBSTANTIAL.uri, LevelOfAssurance.HIGH.uri]
    assert Flow.from_dict(flow.to_dict()) == flow


def test_discovery_with_another_issuer_is_refused() -> None:
    doc = {"issuer": "http://evil.test", "authorization_endpoint": "a", "token_endpoint": "t", "jwks_uri": "j"}
    with pytest.raises(LoginRefused) as info:
        ProviderMetadata.from_document(doc, IDP)
    assert info.value.code == "issuer"


def _code_for(network: Network, flow: Flow) -> str:
    async def scenario() -> str:
        async with httpx.AsyncClient(transport=network.router) as client:
            url = authorization_url(
                ProviderMetadata(IDP, IDP + "/authorize", IDP + "/token", IDP + "/jwks"),
                "portal",
                "http://sp.test/eid/callback",
                flow,
            )
            resp = await client.get(url)
            picker = IDP + resp.headers["location"]
            resp = await client.post(picker, data={"subject": "el-1", "level": "high"})
            return str(dict(httpx.URL(resp.headers["location"]).params)["code"])

    return run(scenario())


def test_replayed_code_is_refused(network: Network) -> None:
    flow = new_flow("/me", LevelOfAssurance.SUBSTANTIAL, NOW)
    code = _code_for(network, flow)
    client = OidcClient(IDP, "portal", None, "http://sp.test/eid/callback", transport=network.router)
    identity = run(client.redeem(code, flow))
    assert identity.subject.identifier.startswith("EL/EL/")
    with pytest.raises(LoginRefused) as info:
        run(client.redeem(code, flow))
    assert info.value.code == "replay"
    assert "used already" in info.value.message


def test_wrong_pkce_verifier_is_refused(network: Network) -> None:
    flow = new_flow("/me", LevelOfAssurance.SUBSTANTIAL, NOW)
    code = _code_for(network, flow)
    stolen = Flow(flow.state, flow.nonce, "another-verifier-" + "x" * 40, "/", flow.required_level, NOW)
    client = OidcClient(IDP, "portal", None, "http://sp.test/eid/callback", transport=network.router)
    with pytest.raises(LoginRefused) as info:
        run(client.redeem(code, stolen))
    assert info.value.code == "replay"  # the provider answers invalid_grant


def test_provider_dialect_is_translated() -> None:
    client = OidcClient(
        IDP,
        CLIENT,
        None,
        "http://sp.test/cb",
        claim_map={"birthplace": "place_of_birth", "pid": "person_identifier"},
        acr_map={"eidas2": "substantial"},
    )
    claims = person_claims()
    claims["pid"] = claims.pop("person_identifier")
    claims["acr"] = "eidas2"
    claims["birthplace"] = "Lyon"
    claims["iss"] = IDP
    identity = identity_from_claims(client.translate(claims), LevelOfAssurance.SUBSTANTIAL)
    assert identity.subject.identifier == "BE/BE/123"
    assert isinstance(identity.subject, NaturalPerson)
    assert identity.subject.place_of_birth == "Lyon"
    assert identity.level is LevelOfAssurance.SUBSTANTIAL


def test_acr_map_with_an_unknown_level_is_a_config_error() -> None:
    from oots.errors import ModelError

    with pytest.raises(ModelError):
        OidcClient(IDP, CLIENT, None, "http://sp.test/cb", acr_map={"x": "medium"})
