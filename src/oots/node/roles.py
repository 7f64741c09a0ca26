"""How a role (requester, provider, common services, eID, admin) plugs into a node.

A node is composed from its settings: :func:`oots.node.create_app` builds one ASGI application and
:func:`oots.node.create_worker` one queue worker, each from the same :class:`NodeContext`. A role is
an object with three optional contributions:

* ``routes()`` — Starlette routes (or mounts) it serves on the node's web endpoint;
* ``job_handlers()`` — queue job kinds it runs in the node's workers (``oots.store.queue``);
* ``as4_handlers()`` — ebMS actions it consumes: a delivered, *verified* AS4 user message of that action
  is handed to the handler inside the queue transaction that marks its delivery done, so the role
  sees each message exactly once.

A role may add ``job_preparers()`` (job kind → :data:`oots.store.queue.Preparer`, run before the job's
transaction) and ``as4_preparers()`` (action → preparer, which sees a delivered message *before* that
transaction opens): a preparer does the slow part of the work there (asking the Common Services;
validating, rendering, packing an answer), keeping the result for its handler, so that the node's
database write lock (SQLite) is held only for the writes. The handler must still work when nothing
was prepared. A role may also add ``job_dead_hooks()`` (job kind → :data:`oots.store.queue.DeadHook`)
and ``as4_delivery_failed()`` (action → hook with the message and the error): told, in the transaction
that dead-letters the job, that the work could not be done (the provider journals that its answer could
not be sent: the partner's certificate is not valid), also when its worker never finished the job's last
attempt (the error is then a :class:`oots.errors.LeaseExpired`). A role that can lose part of what it offers while
the node runs (the provider: a data service whose register could not be loaded) adds
``unavailable()``, what is unavailable and why (:func:`unavailable`, shown by ``/ready`` and the admin
area). A role with work to do now and then rather than per job (the requester: ending exchanges whose
deadline has passed; the provider: closing previews past their retention) adds ``periodic()``, a list
of :class:`Periodic`: each worker process of the node runs each in a loop of its own
(:class:`oots.store.loops.Loops`), so the work must be safe to do in several processes at once.

Roles get everything they use from the context — never from globals — so several nodes can run in
one process in tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from oots.settings import Settings
from oots.store import Database
from oots.store.queue import Handler

__all__ = ["As4Handler", "As4Preparer", "NodeContext", "Periodic", "Role", "unavailable"]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class NodeContext:
    """What a node's parts share: settings, database, clock, and the services built from the settings.

    ``services`` holds the node's loaded services by name (``"access_point"``, ``"cs_client"``,
    ``"audit"``, ...), filled in by the composition in :mod:`oots.node.app`.
    """

    settings: Settings
    database: Database
    clock: Callable[[], dt.datetime] = _utcnow
    services: dict[str, Any] = field(default_factory=dict)


#: ``handler(session, message)`` for a delivered AS4 user message (the access point's verified form).
As4Handler = Callable[[Session, Any], None]
#: ``preparer(message)``: what can be done for a delivered message before its transaction (optional).
As4Preparer = Callable[[Any], None]


@dataclass(frozen=True)
class Periodic:
    """Work a role has the node's workers do every ``every_seconds`` (its ``periodic()``).

    ``tick()`` does one small piece of it (one batch, in a write transaction of its own) and returns how
    much it did: something true has it run again at once, nothing waits ``every_seconds``. A tick that
    raises is logged and the loop goes on. ``name`` names the thread.
    """

    name: str
    tick: Callable[[], object]
    every_seconds: float


class Role(Protocol):
    """One part of a node. Every method is optional in spirit: return an empty collection."""

    name: str

    def routes(self) -> Sequence[BaseRoute]: ...

    def job_handlers(self) -> Mapping[str, Handler]: ...

    def as4_handlers(self) -> Mapping[str, As4Handler]: ...


def unavailable(ctx: NodeContext) -> dict[str, str]:
    """What the node's roles offer that is unavailable now, each with why (their ``unavailable()``)."""
    out: dict[str, str] = {}
    for role in ctx.services.get("roles", []):
        found = getattr(role, "unavailable", None)
        if found is not None:
            out.update(found())
    return out
