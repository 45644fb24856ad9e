"""One Ingress → validated routes: hosts, paths, path types, default backend, TLS, options.

Any field that fails its grammar raises `Invalid`, and the caller leaves the whole Ingress out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from ingress_ctrl.state import ObjectKey
from ingress_ctrl.translate import annotations, grammar
from ingress_ctrl.translate.backends import ServiceBackend
from ingress_ctrl.translate.grammar import Invalid
from ingress_ctrl.translate.model import LocationOptions

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """One path of one rule. `host` None means any host; prefix paths carry no trailing slash."""

    host: str | None
    match: Literal["exact", "prefix"]
    path: str
    backend: ServiceBackend
    field: str


@dataclasses.dataclass(frozen=True, slots=True)
class TLSEntry:
    hosts: tuple[str, ...]
    secret: str | None
    field: str


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedIngress:
    key: ObjectKey
    age: tuple[str, str, str]  # oldest first: creationTimestamp, then namespace/name
    hosts: tuple[str | None, ...]  # every rule's host, in order; None = a rule without host
    routes: tuple[Route, ...]
    default_backend: ServiceBackend | None
    tls: tuple[TLSEntry, ...]
    options: LocationOptions
    warnings: tuple[tuple[str, str], ...]


def normalize_prefix(path: str) -> str:
    """Prefix matching ignores a trailing slash: `/foo/` and `/foo` are the same rule."""
    return path.rstrip("/") or "/"


def prefix_matches(prefix: str, uri: str) -> bool:
    """The Ingress `Prefix` rule: element-wise on `/`, so `/foo` matches `/foo/bar`, not `/foobar`."""
    return prefix == "/" or uri == prefix or uri.startswith(prefix + "/")


def parse_ingress(key: ObjectKey, obj: Mapping[str, Any]) -> ParsedIngress:
    meta = grammar.mapping(obj.get("metadata"), "metadata")
    namespace = grammar.dns_label(key.namespace, "metadata.namespace")
    created = meta.get("creationTimestamp") or ""
    options, warnings = annotations.parse(grammar.mapping(meta.get("annotations"), "metadata.annotations", optional=True))
    spec = grammar.mapping(obj.get("spec"), "spec")

    default_backend = None
    if spec.get("defaultBackend") is not None:
        default_backend = ServiceBackend.parse(namespace, spec["defaultBackend"], "spec.defaultBackend")

    hosts: list[str | None] = []
    routes: list[Route] = []
    for r, rule in enumerate(grammar.sequence(spec.get("rules"), "spec.rules")):
        field = f"spec.rules[{r}]"
        rule = grammar.mapping(rule, field)
        host = grammar.host(rule["host"], f"{field}.host") if rule.get("host") else None
        hosts.append(host)
        http = grammar.mapping(rule.get("http"), f"{field}.http", optional=True)
        for p, entry in enumerate(grammar.sequence(http.get("paths"), f"{field}.http.paths")):
            routes.append(_route(namespace, host, entry, f"{field}.http.paths[{p}]"))
    if not hosts and default_backend is None:
        raise Invalid("spec", "needs rules or a defaultBackend")

    tls = []
    for t, entry in enumerate(grammar.sequence(spec.get("tls"), "spec.tls")):
        field = f"spec.tls[{t}]"
        entry = grammar.mapping(entry, field)
        tls_hosts = tuple(grammar.host(h, f"{field}.hosts[{i}]") for i, h in enumerate(grammar.sequence(entry.get("hosts"), f"{field}.hosts")))
        secret = grammar.dns_subdomain(entry["secretName"], f"{field}.secretName") if entry.get("secretName") else None
        tls.append(TLSEntry(tls_hosts, secret, field))

    return ParsedIngress(
        key=key,
        age=(created if isinstance(created, str) else "", key.namespace, key.name),
        hosts=tuple(hosts),
        routes=tuple(routes),
        default_backend=default_backend,
        tls=tuple(tls),
        options=options,
        warnings=tuple(warnings),
    )


def _route(namespace: str, host: str | None, entry: Any, field: str) -> Route:
    entry = grammar.mapping(entry, field)
    path_type = entry.get("pathType")
    if path_type not in PATH_TYPES:
        raise Invalid(f"{field}.pathType", f"{path_type!r} must be one of {', '.join(PATH_TYPES)}")
    path = grammar.path(entry.get("path", "/") if path_type == "ImplementationSpecific" else entry.get("path"), f"{field}.path")
    backend = ServiceBackend.parse(namespace, entry.get("backend"), f"{field}.backend")
    if path_type == "Exact":
        return Route(host, "exact", path, backend, field)
    # ImplementationSpecific is documented to behave exactly as Prefix.
    return Route(host, "prefix", normalize_prefix(path), backend, field)
