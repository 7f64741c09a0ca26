"""What ``oots request`` does: drive one exchange through a node's portal API, without a browser.

:func:`drive` takes an HTTP client already pointed at the node (carrying the API key, or with
:class:`ClientCredentials` as its auth: OAuth2 client credentials, a token fetched and renewed as needed), the
exchange to start and how to answer choices, and returns the evidence files it saved. Choices are
made from the options (``evidence_type``, ``provider``), from the answers file, or asked on the
terminal through ``ask`` (None: not interactive, a choice that cannot be made is an error).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from oots.errors import ConfigError, NotFound, OotsError, TransportError

__all__ = [
    "START_ATTEMPTS",
    "STEP_ATTEMPTS",
    "WAIT_SECONDS",
    "ClientCredentials",
    "ExchangeFailed",
    "RequestOptions",
    "drive",
]

#: How long one step or read waits on the node for the exchange to need the driver (``oots request``'s long poll).
WAIT_SECONDS = 10.0
#: How many times the start is sent (with one ``Idempotency-Key``) when its answer does not come back.
START_ATTEMPTS = 3
#: What a start whose answer was lost gets: sent again, with the same key (a gateway in front of the node
#: that could not reach it answers 502, 503 or 504).
_START_LOST = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_START_AGAIN_STATUS = frozenset({502, 503, 504})
#: How many times in a row a read or a later step (choices, explicit request) may get no answer before the
#: driver gives up. A step whose answer was lost is not sent again blindly: the exchange is read first,
#: and the step is sent again only if the exchange still waits for it (the node takes it at most once).
STEP_ATTEMPTS = 5

_SUFFIX = {"application/pdf": "pdf", "application/xml": "xml", "application/json": "json"}


class ExchangeFailed(OotsError):
    """The exchange ended without evidence (failed or expired)."""


class ClientCredentials(httpx.Auth):
    """httpx auth for the portal API with OAuth2 client credentials (``POST <node>/api/v1/oauth/token``).

    Fetches a token before the first call and whenever the one held is about to expire, and once more
    when the API answers 401 (the token expired or the node's key changed)."""

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self._credentials = (client_id, client_secret)
        self.scope = scope
        self.clock = clock
        self._token: str | None = None
        self._renew_at = 0.0

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        request = httpx.Request("POST", self.token_url, data=form)
        return next(httpx.BasicAuth(*self._credentials).auth_flow(request))

    def _store(self, reply: httpx.Response) -> None:
        if reply.status_code != 200:
            try:
                error = reply.json().get("error", "")
            except ValueError:
                error = ""
            raise ConfigError(f"the node refused the client credentials (HTTP {reply.status_code} {error})".rstrip())
        body = reply.json()
        self._token = str(body["access_token"])
        # renew a little before the node would refuse it
        self._renew_at = self.clock() + max(0.0, float(body.get("expires_in", 60)) - 10)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or self.clock() >= self._renew_at:
            self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        reply = yield request
        if reply.status_code == 401:
            self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


@dataclass
class RequestOptions:
    procedure: str
    country: str
    person: dict[str, Any]
    out: Path
    evidence_type: str | None = None
    provider: str | None = None
    answers: Mapping[str, Any] = field(default_factory=dict)
    preview: bool = True
    timeout: float = 600.0


def _check(reply: httpx.Response) -> dict[str, Any]:
    if reply.status_code == 401:
        raise ConfigError("the node refused the API key or access token")
    if reply.status_code == 403:
        raise ConfigError("the client is not allowed this call (scope)")
    if reply.status_code == 404:
        raise NotFound(reply.json().get("detail", "not found"))
    if reply.status_code >= 400:
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text[:200]
        raise ConfigError(f"the node answered HTTP {reply.status_code}: {detail}")
    body: dict[str, Any] = reply.json()
    return body


def _pick(
    options: list[dict[str, Any]], wanted: str | None, what: str, ask: Callable[[str, list[str]], str] | None
) -> str:
    if wanted:
        for option in options:
            if wanted in (option["id"], option.get("name"), option["id"].partition("|")[2]) or any(
                wanted == t.get("classification") or t.get("classification", "").endswith("/" + wanted)
                for t in option.get("evidence_types", [])
            ):
                return str(option["id"])
    if ask is None:
        names = "; ".join(f"{o['id']} ({o.get('name', '')})" for o in options)
        raise ConfigError(f"choose {what}: one of {names}")
    return ask(f"Choose {what}", [f"{o['id']} ({o.get('name', '')})" for o in options]).partition(" (")[0]


def _answer(
    q: dict[str, Any],
    cls: str,
    given: Mapping[str, Any],
    ask: Callable[[str, list[str]], str] | None,
    *,
    refused: bool = False,
) -> str:
    per_type = given.get(cls)
    if isinstance(per_type, Mapping) and q["id"] in per_type:
        return str(per_type[q["id"]])
    if q["id"] in given and not isinstance(given[q["id"]], Mapping):
        return str(given[q["id"]])
    if ask is None:
        if refused:
            raise ConfigError(
                f"the answer to the question {q['label']!r} ({q['id']}) was not accepted: give another in --answers"
            )
        raise ConfigError(f"the question {q['label']!r} ({q['id']}) needs an answer: give it in --answers")
    hint = q.get("values") or ([f"a {q['level']} code"] if q.get("level") else [])
    return ask(f"{q['label']} (the answer was not accepted; try again)" if refused else q["label"], list(hint))


def _choices(view: dict[str, Any], opts: RequestOptions, ask: Callable[[str, list[str]], str] | None) -> dict[str, Any]:
    choices: dict[str, Any] = {}
    for entry in view["requirements"]:
        if entry["upload"]:
            continue
        choice: dict[str, Any] = {}
        if entry["chosen_list"] is None and len(entry["lists"]) > 1:
            choice["list"] = _pick(entry["lists"], opts.evidence_type, f"the evidence for {entry['name']}", ask)
        for cls, slot in entry["types"].items():
            if slot["questions"] and not slot["providers"]:
                refused = slot.get("error") == "invalid_answer"  # the answers given were not accepted
                choice.setdefault("answers", {})[cls] = {
                    q["id"]: _answer(q, cls, {} if refused else opts.answers, ask, refused=refused)
                    for q in slot["questions"]
                }
            elif slot["providers"] and slot["chosen_provider"] is None:
                choice.setdefault("providers", {})[cls] = _pick(slot["providers"], opts.provider, "the provider", ask)
        if choice:
            choices[entry["id"]] = choice
    return {"requirements": choices}


def drive(
    client: httpx.Client,
    opts: RequestOptions,
    *,
    ask: Callable[[str, list[str]], str] | None = None,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wait: float = 0.0,
) -> list[Path]:
    """Run one exchange to its end; the evidence files saved (ExchangeFailed when none arrived).

    With ``wait`` (seconds, at most 60), the driver waits on the node for its turn: each step (start,
    choices, explicit request) goes with ``Prefer: wait=<wait>`` and is answered with the exchange once
    it needs the driver or has ended, and a read is a long poll for that (``until=actionable``), so the
    driver neither sleeps nor asks again and again. Without it (or against a node that answers at once),
    the driver reads, then ``sleep``s 0.2 s. The start carries a new ``Idempotency-Key`` and is sent
    again with it when its answer is lost (:data:`START_ATTEMPTS` in all). A read or step whose answer is
    lost (no answer, or 502/503/504 from a gateway) is followed by a read after a pause (1 s, 2 s ...),
    :data:`STEP_ATTEMPTS` times in a row at most; a step the node answers 409 was taken by an earlier
    attempt whose answer was lost, so the exchange is read again.
    """
    prefer = {"Prefer": f"wait={round(wait)}"} if wait >= 1 else {}
    body = {"procedure": opts.procedure, "country": opts.country, "person": opts.person, "preview": opts.preview}
    reply = _start(client, body, prefer, sleep)
    created = _check(reply)
    ex_id = created["id"]
    say(f"exchange {ex_id} started")
    deadline = clock() + opts.timeout
    shown_preview: str | None = None
    asked_explicit = False
    # the exchange when the node answered a step with it (Prefer applied), else what to read after
    view: dict[str, Any] | None = created if _waited(reply) else None
    version: int | None = None
    lost = 0  # reads and steps in a row whose answer did not come back

    def lost_again(what: str) -> None:
        nonlocal lost
        lost += 1
        if lost >= STEP_ATTEMPTS:
            raise TransportError(f"the node did not answer {what} of exchange {ex_id} {lost} times in a row")
        say(f"no answer to {what}; reading the exchange again in {lost} s")
        sleep(float(lost))

    while True:
        gentle = False  # after a read that came back at once with nothing new: sleep before the next one
        if view is None:
            waiting = max(0.0, min(wait, deadline - clock()))
            asked = clock()
            params: dict[str, Any] | None = None
            if waiting >= 0.1:
                params = {"until": "actionable", "wait": round(waiting, 1)}
                if version is not None:
                    params["version_after"] = version
            got = _call(client, "GET", f"/api/v1/exchanges/{ex_id}", params=params)
            if got is None:
                lost_again("the read")
                continue
            lost = 0
            view = _check(got)
            gentle = params is None or (view["version"] == version and clock() - asked < waiting / 2)
        state = view["state"]
        version = view["version"]
        if state == "awaiting_user_choice":
            choices = _choices(view, opts, ask)
            step = _call(client, "POST", f"/api/v1/exchanges/{ex_id}/choices", json=choices, headers=prefer)
            if step is None or step.status_code == 409:  # lost, or taken by an attempt whose answer was lost
                view = None
                if step is None:
                    lost_again("the choices")
                continue
            view, version = _after_step(step)
            lost = 0
            continue
        if state == "awaiting_explicit_request" and not asked_explicit:
            for entry in view["requirements"]:
                for cls, slot in entry["types"].items():
                    chosen = next((p for p in slot["providers"] if p["id"] == slot["chosen_provider"]), None)
                    if chosen is not None:
                        say(f"asking {chosen['name']} for {cls.rpartition('/')[2]} ({entry['name']})")
            step = _call(client, "POST", f"/api/v1/exchanges/{ex_id}/explicit-request", headers=prefer)
            view = None
            if step is None:
                lost_again("the explicit request")
                continue  # sent again only if the exchange, read again, still waits for it
            asked_explicit = True
            if step.status_code != 409:  # 409: an attempt whose answer was lost was taken
                view, version = _after_step(step)
                lost = 0
            continue
        if state == "awaiting_preview" and view.get("preview") and view["preview"]["location"] != shown_preview:
            shown_preview = view["preview"]["location"]
            say(f"preview required: open {shown_preview} ({view['preview']['method']})")
        if state == "completed":
            return _save(client, view, opts.out, say)
        if state in ("failed", "expired"):
            raise ExchangeFailed(f"the exchange {state}: {view.get('reason_text') or view.get('reason')}")
        if clock() > deadline:
            raise TransportError(f"the exchange {ex_id} did not end within {opts.timeout:.0f} s (state {state})")
        if gentle:
            sleep(0.2)  # not a long poll, or the node answered at once with nothing new: poll gently
        view = None  # read it again: the next change


def _start(
    client: httpx.Client, body: dict[str, Any], prefer: dict[str, str], sleep: Callable[[float], None]
) -> httpx.Response:
    """Send the start; when its answer is lost, send it again with the same ``Idempotency-Key``.

    The node answers a start sent again with its key with the exchange the first one made, so a lost
    answer never makes a second exchange. The last attempt's error or answer is the caller's."""
    headers = {**prefer, "Idempotency-Key": str(uuid.uuid4())}
    for attempt in range(1, START_ATTEMPTS):
        try:
            reply = client.post("/api/v1/exchanges", json=body, headers=headers)
        except _START_LOST:
            pass
        else:
            if reply.status_code not in _START_AGAIN_STATUS:
                return reply
        sleep(float(attempt))  # 1 s, then 2 s
    return client.post("/api/v1/exchanges", json=body, headers=headers)


def _call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
    """One read or step; None when its answer did not come back (or a gateway answered 502/503/504)."""
    try:
        reply = client.request(method, url, **kwargs)
    except _START_LOST:
        return None
    return None if reply.status_code in _START_AGAIN_STATUS else reply


def _waited(reply: httpx.Response) -> bool:
    """Whether the node applied ``Prefer: wait``: the answer to a step is then the exchange itself."""
    return "wait" in reply.headers.get("preference-applied", "")


def _after_step(reply: httpx.Response) -> tuple[dict[str, Any] | None, int]:
    """The exchange the answer to a step carries (None: read it) and the version after the step."""
    body = _check(reply)
    return (body if _waited(reply) else None), int(body["version"])


def _save(client: httpx.Client, view: dict[str, Any], out: Path, say: Callable[[str], None]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    for ev in view["evidence"]:
        reply = client.get(f"/api/v1/exchanges/{view['id']}/evidence/{ev['id']}")
        if reply.status_code != 200:
            raise TransportError(f"cannot download evidence {ev['id']}: HTTP {reply.status_code}")
        path = out / f"evidence-{ev['id']}.{_SUFFIX.get(ev['media_type'], 'bin')}"
        path.write_bytes(reply.content)
        say(f"saved {path} ({ev['title']}, {ev['media_type']}, {len(reply.content):,} bytes)")
        saved.append(path)
    return saved
