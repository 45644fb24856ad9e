"""Kubernetes mode's flags (ingress-nginx's names) and the API resources it reads and writes.

The resource tables are the single source for the Kopf watches and for the RBAC in deploy/.
"""

from __future__ import annotations

import argparse
import dataclasses


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str  # "" for the core API
    version: str
    plural: str
    kind: str
    verbs: tuple[str, ...]
    cluster_scoped: bool = False


WATCH_VERBS = ("get", "list", "watch")
WATCHED: tuple[Resource, ...] = (
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", WATCH_VERBS),
    Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", WATCH_VERBS, cluster_scoped=True),
    Resource("", "v1", "services", "Service", WATCH_VERBS),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", WATCH_VERBS),
    Resource("", "v1", "endpoints", "Endpoints", WATCH_VERBS),
    Resource("", "v1", "secrets", "Secret", WATCH_VERBS),
)
WRITTEN: tuple[Resource, ...] = (
    Resource("networking.k8s.io", "v1", "ingresses/status", "Ingress", ("update", "patch")),
    Resource("events.k8s.io", "v1", "events", "Event", ("create", "patch")),
)
# Leader election: only in the controller's own namespace (a Role, not a ClusterRole).
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease", ("get", "create", "update"))


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Kubernetes")
    group.add_argument("--watch-namespace", default="", help="comma-separated namespaces to watch (default: all)")
    group.add_argument("--publish-service", metavar="NS/NAME", help="copy this Service's status.loadBalancer into served Ingresses' status")
    group.add_argument("--publish-status-address", default="", help="comma-separated IPs or hostnames to publish instead of --publish-service")
    group.add_argument("--update-status", type=_boolean, nargs="?", const=True, default=True, metavar="BOOL",
                       help="write Ingress status (default: true)")
    group.add_argument("--election-id", default="ingress-ctrl-leader", help="name of the Lease in $POD_NAMESPACE that elects the status writer (default: ingress-ctrl-leader)")
    group.add_argument("--election-ttl", type=float, default=15.0, help="seconds a leader's Lease lasts without renewal (default: 15)")
    group.add_argument("--resync-period", type=float, default=300.0, help="seconds between full LISTs that catch what a lost watch missed (default: 300)")
    group.add_argument("--watch-endpoints", type=_boolean, nargs="?", const=True, default=True, metavar="BOOL",
                       help="also watch v1 Endpoints, used for Services without EndpointSlices (default: true)")
