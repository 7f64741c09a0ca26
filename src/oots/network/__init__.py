"""A whole OOTS network on one machine: topology → keys and configs → supervised processes.

``oots demo`` uses it: :func:`load_topology` reads the network's shape, :func:`plan` writes every key
and configuration file into a directory and returns the processes to start, :class:`Supervisor` starts
them, waits for each ``/health`` while showing progress, and stops them all on Ctrl-C.
"""

from oots.network.plan import NetworkPlan, ServiceSpec, plan
from oots.network.supervisor import Supervisor
from oots.network.topology import NodeSpec, Topology, load_topology

__all__ = ["NetworkPlan", "NodeSpec", "ServiceSpec", "Supervisor", "Topology", "load_topology", "plan"]
