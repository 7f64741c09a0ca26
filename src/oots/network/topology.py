"""The shape of a local network: which countries run a node, with which roles."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oots.errors import ConfigError

__all__ = ["DEFAULT_TOPOLOGY", "NodeSpec", "Topology", "load_topology"]

DEFAULT_TOPOLOGY = "builtin:default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommonServicesSpec(_Strict):
    catalogue: str = Field("builtin:demo", description="'builtin:demo' or a catalogue data file (TOML).")


class EidSpec(_Strict):
    people: str = Field("builtin", description="'builtin' or a JSON file of test identities.")


class NodeSpec(_Strict):
    country: str = Field(pattern=r"^[A-Z]{2}$")
    roles: tuple[Literal["requester", "provider"], ...] = ("requester", "provider")
    name: str = ""

    @property
    def node_name(self) -> str:
        return self.name or f"{self.country.lower()}-node"

    @property
    def party_id(self) -> str:
        """The access point id the demo catalogue gives this country (``AP_<CC>_01``)."""
        return f"AP_{self.country}_01"


class Topology(_Strict):
    common_services: CommonServicesSpec = CommonServicesSpec()
    eid: EidSpec = EidSpec()
    node: tuple[NodeSpec, ...] = Field(min_length=1)


def load_topology(source: str | Path = DEFAULT_TOPOLOGY) -> Topology:
    """Read a topology file (``builtin:default`` is the one shipped with oots)."""
    try:
        if str(source) == DEFAULT_TOPOLOGY:
            text = resources.files("oots.network").joinpath("data/default-topology.toml").read_text("utf-8")
        else:
            text = Path(source).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read the topology {source}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the topology {source} is not valid TOML: {exc}") from None
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        problems = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        lines = "; ".join(f"{p}: {r}" for p, r in problems)
        raise ConfigError(f"the topology {source} has {len(problems)} problem(s): {lines}", problems) from None
    countries = [n.country for n in topology.node]
    if len(set(countries)) != len(countries):
        raise ConfigError(f"the topology {source} names a country twice: {countries}")
    return topology
