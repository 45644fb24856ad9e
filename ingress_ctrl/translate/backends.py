"""Service port → ready endpoints → a shared upstream; ExternalName → a DNS name.

Upstreams are keyed by Service port, not by Ingress, so any number of Ingresses routing to one
Service port share one `upstream{}` block (nginx's config load time grows with their square).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ingress_ctrl.state import ObjectKey, Snapshot
from ingress_ctrl.translate import grammar
from ingress_ctrl.translate.grammar import Invalid
from ingress_ctrl.translate.memo import IdentityMemo
from ingress_ctrl.translate.model import UNAVAILABLE, Backend, Endpoint, Problem, Upstream

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# An endpoint while it is being collected and de-duplicated: plain tuples hash and sort in C, an
# Endpoint (the model's) is made once per endpoint of an upstream in use.
Address = tuple[str, int]


def upstream_name(namespace: str, service: str, port: int) -> str:
    """`u<6 hex>_<namespace>_<service>_<port>`: unique (none of the parts can hold `_`), and
    different from the other names in its first characters.

    nginx finds an upstream by scanning the list of all of them, comparing names, for every
    `upstream{}` and every `proxy_pass`; names that share a long prefix (`default_app-00001_80`)
    make each comparison walk that prefix: twice the `nginx -t` time at 10,000 Ingresses.
    """
    name = f"{namespace}_{service}_{port}"
    return f"u{hashlib.sha1(name.encode()).hexdigest()[:6]}_{name}"


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceBackend:
    """A validated `backend.service` of an Ingress: a Service and a port by number or name."""

    namespace: str
    name: str
    port: int | str

    @classmethod
    def parse(cls, namespace: str, spec: Any, field: str) -> ServiceBackend:
        spec = grammar.mapping(spec, field)
        if "resource" in spec:
            raise Invalid(f"{field}.resource", "resource backends are not supported; use a Service")
        service = grammar.mapping(spec.get("service"), f"{field}.service")
        name = grammar.service_name(service.get("name"), f"{field}.service.name")
        port_spec = grammar.mapping(service.get("port"), f"{field}.service.port")
        if port_spec.get("number") is not None:
            port: int | str = grammar.port_number(port_spec["number"], f"{field}.service.port.number")
        elif port_spec.get("name") is not None:
            port = grammar.port_name(port_spec["name"], f"{field}.service.port.name")
        else:
            raise Invalid(f"{field}.service.port", "needs a number or a name")
        return cls(namespace, name, port)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"


class BackendResolver:
    """Resolves ServiceBackends against one snapshot, collecting the upstreams in use."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._slices: dict[tuple[str, str], list[tuple[ObjectKey, Mapping[str, Any]]]] = defaultdict(list)
        for (namespace, name), obj in snapshot.of("EndpointSlice").items():
            labels = (obj.get("metadata") or {}).get("labels") or {}
            service = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, Mapping) else None
            if isinstance(service, str):
                self._slices[(namespace, service)].append((ObjectKey("EndpointSlice", namespace, name), obj))
        self._services = snapshot.of("Service")
        self._endpoints_v1 = snapshot.of("Endpoints")
        self._cache: dict[ServiceBackend, Resolution] = {}
        self.upstreams: dict[str, Upstream] = {}
        self.problems: set[Problem] = set()  # about Services and endpoint objects, not Ingresses

    def resolve(self, ref: ServiceBackend) -> tuple[Backend, str | None]:
        """The Backend for `ref`, and why it answers 503 when it does (the same tuple object for as
        long as the Service and its endpoint objects stay the same ones, across syncs)."""
        resolution = self._cache.get(ref)
        if resolution is None:
            slices = self._slices.get((ref.namespace, ref.name), ())
            inputs = (self._services.get((ref.namespace, ref.name)), *(obj for _, obj in slices),
                      None if slices else self._endpoints_v1.get((ref.namespace, ref.name)))
            resolution = RESOLUTIONS(ref, inputs, lambda: self._resolve(ref, slices))
            self._cache[ref] = resolution
            if resolution.upstream is not None:
                self.upstreams[resolution.upstream.name] = resolution.upstream
            self.problems.update(resolution.problems)
        return resolution.result

    def _resolve(self, ref: ServiceBackend, slices: Any) -> Resolution:
        problems: list[Problem] = []

        def unavailable(why: str) -> Resolution:
            return Resolution((UNAVAILABLE, why), None, tuple(problems))

        service = self._services.get((ref.namespace, ref.name))
        if service is None:
            return unavailable(f"Service {ref.namespace}/{ref.name} not found")
        try:
            spec = SERVICE_SPECS(service)
        except Invalid as error:
            problems.append(Problem(ObjectKey("Service", ref.namespace, ref.name), error.field, error.reason))
            return unavailable(f"Service {ref.namespace}/{ref.name}: {error.field}: {error.reason}")
        port = next(((number, name) for number, name in spec.ports if ref.port in (number, name)), None)
        if spec.external_name is not None:
            number = port[0] if port else ref.port if isinstance(ref.port, int) else None
            if number is None:
                return unavailable(f"Service {ref.namespace}/{ref.name} has no port named {ref.port!r}")
            return Resolution((Backend(external_host=spec.external_name, external_port=number), None), None, ())
        if port is None:
            return unavailable(f"Service {ref.namespace}/{ref.name} has no port {ref.port}")
        number, port_name = port
        endpoints = self._endpoints(ref, port_name, slices, problems)
        if not endpoints:
            return unavailable(f"Service {ref.namespace}/{ref.name} port {ref.port} has no ready endpoints")
        name = upstream_name(ref.namespace, ref.name, number)
        upstream = Upstream(name, tuple(Endpoint(*address) for address in sorted(endpoints)))
        return Resolution((Backend(upstream=name), None), upstream, tuple(problems))

    def _endpoints(self, ref: ServiceBackend, port_name: str, slices: Any, problems: list[Problem]) -> set[Address]:
        if slices:
            found: set[Address] = set()
            for key, obj in slices:
                found |= _guarded(key, SLICE_ENDPOINTS, obj, problems).get(port_name, frozenset())
            return found
        endpoints = self._endpoints_v1.get((ref.namespace, ref.name))
        if endpoints is None:
            return set()
        key = ObjectKey("Endpoints", ref.namespace, ref.name)
        return set(_guarded(key, V1_ENDPOINTS, endpoints, problems).get(port_name, frozenset()))


def _guarded(key: ObjectKey, read: IdentityMemo[dict[str, frozenset[Address]]], obj: Any,
             problems: list[Problem]) -> dict[str, frozenset[Address]]:
    try:
        return read(obj)
    except Invalid as error:
        problems.append(Problem(key, error.field, error.reason, rejected=True))
        return {}


@dataclasses.dataclass(frozen=True, slots=True)
class Resolution:
    """What one ServiceBackend resolves to: (Backend, why it answers 503), its upstream, and the
    problems found in the Service and endpoint objects on the way."""

    result: tuple[Backend, str | None]
    upstream: Upstream | None
    problems: tuple[Problem, ...]


class ResolutionMemo:
    """Resolutions remembered across syncs, per ServiceBackend, while its input objects (the
    Service, its EndpointSlices or Endpoints) stay the very same objects (see memo.py)."""

    def __init__(self) -> None:
        self._entries: dict[ServiceBackend, tuple[tuple[Any, ...], Resolution]] = {}
        self._fresh: dict[ServiceBackend, tuple[tuple[Any, ...], Resolution]] = {}

    def __call__(self, ref: ServiceBackend, inputs: tuple[Any, ...], compute: Any) -> Resolution:
        entry = self._fresh.get(ref) or self._entries.get(ref)
        if entry is None or len(entry[0]) != len(inputs) or any(a is not b for a, b in zip(entry[0], inputs)):
            entry = (inputs, compute())
        self._fresh[ref] = entry
        return entry[1]

    def new_round(self) -> None:
        self._entries, self._fresh = self._fresh, {}


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceSpec:
    """What routing needs of a Service: its ports (number, name) and, if ExternalName, the host."""

    ports: tuple[tuple[int, str], ...]
    external_name: str | None


def _service_spec(service: Mapping[str, Any]) -> ServiceSpec:
    spec = grammar.mapping(service.get("spec"), "spec", optional=True)
    ports = []
    for index, port in enumerate(grammar.sequence(spec.get("ports"), "spec.ports")):
        field = f"spec.ports[{index}]"
        port = grammar.mapping(port, field)
        number = grammar.port_number(port.get("port"), f"{field}.port")
        ports.append((number, grammar.port_name(port["name"], f"{field}.name") if port.get("name") else ""))
    external = grammar.dns_subdomain(spec.get("externalName"), "spec.externalName") if spec.get("type") == "ExternalName" else None
    return ServiceSpec(tuple(ports), external)


def _slice_endpoints(obj: Mapping[str, Any]) -> dict[str, frozenset[Address]]:
    """Ready endpoints of one EndpointSlice, by port name."""
    if obj.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
        return {}  # FQDN slices are not routable by address
    ports: dict[str, int] = {}
    for index, port in enumerate(grammar.sequence(obj.get("ports"), "ports")):
        port = grammar.mapping(port, f"ports[{index}]")
        if port.get("port") is not None:
            name = grammar.string(port.get("name") or "", f"ports[{index}].name")
            ports[name] = grammar.port_number(port["port"], f"ports[{index}].port")
    addresses = []
    for index, endpoint in enumerate(grammar.sequence(obj.get("endpoints"), "endpoints")):
        field = f"endpoints[{index}]"
        endpoint = grammar.mapping(endpoint, field)
        conditions = grammar.mapping(endpoint.get("conditions"), f"{field}.conditions", optional=True)
        if conditions.get("ready") is False:
            continue
        for a, address in enumerate(grammar.sequence(endpoint.get("addresses"), f"{field}.addresses")):
            addresses.append(grammar.ip_address(address, f"{field}.addresses[{a}]"))
    return {name: frozenset((address, port) for address in addresses) for name, port in ports.items()}


def _v1_endpoints(obj: Mapping[str, Any]) -> dict[str, frozenset[Address]]:
    """Ready endpoints of a v1 Endpoints object, by port name."""
    found: dict[str, set[Address]] = defaultdict(set)
    for s, subset in enumerate(grammar.sequence(obj.get("subsets"), "subsets")):
        field = f"subsets[{s}]"
        subset = grammar.mapping(subset, field)
        ports: dict[str, int] = {}
        for i, port in enumerate(grammar.sequence(subset.get("ports"), f"{field}.ports")):
            port = grammar.mapping(port, f"{field}.ports[{i}]")
            name = grammar.string(port.get("name") or "", f"{field}.ports[{i}].name")
            ports[name] = grammar.port_number(port.get("port"), f"{field}.ports[{i}].port")
        for a, address in enumerate(grammar.sequence(subset.get("addresses"), f"{field}.addresses")):
            ip = grammar.ip_address(grammar.mapping(address, f"{field}.addresses[{a}]").get("ip"), f"{field}.addresses[{a}].ip")
            for name, port in ports.items():
                found[name].add((ip, port))
    return {name: frozenset(endpoints) for name, endpoints in found.items()}


SERVICE_SPECS = IdentityMemo(_service_spec)
SLICE_ENDPOINTS = IdentityMemo(_slice_endpoints)
V1_ENDPOINTS = IdentityMemo(_v1_endpoints)
RESOLUTIONS = ResolutionMemo()
