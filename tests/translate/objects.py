"""Builders of Kubernetes objects for the pure translate tests."""

from __future__ import annotations

import datetime
from typing import Any

from ingress_ctrl.settings import ClassSettings, ObjectRef, TranslateSettings
from ingress_ctrl.state import Store, key_of
from ingress_ctrl.translate import translate
from ingress_ctrl.translate.backends import upstream_name
from ingress_ctrl.translate.model import Server, Translation

NOW = datetime.datetime(2026, 11, 28, tzinfo=datetime.timezone.utc)
CONTROLLER = "k8s.io/ingress-ctrl"


def ingress_class(name: str = "nginx", controller: str = CONTROLLER, default: bool = False) -> dict[str, Any]:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"kind": "IngressClass", "metadata": {"name": name, "annotations": annotations}, "spec": {"controller": controller}}


def backend(service: str, port: int | str = 80) -> dict[str, Any]:
    return {"service": {"name": service, "port": {"number": port} if isinstance(port, int) else {"name": port}}}


def path(p: str, service: str, path_type: str = "Prefix", port: int | str = 80) -> dict[str, Any]:
    return {"path": p, "pathType": path_type, "backend": backend(service, port)}


def ingress(name: str, *rules: dict[str, Any], namespace: str = "default", created: str | None = None,
            default_backend: dict[str, Any] | None = None, tls: list[dict[str, Any]] | None = None,
            class_name: str | None = "nginx", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": list(rules)} if rules else {}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if default_backend is not None:
        spec["defaultBackend"] = default_backend
    if tls is not None:
        spec["tls"] = tls
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "annotations": annotations or {}}
    if created:
        meta["creationTimestamp"] = created
    return {"kind": "Ingress", "metadata": meta, "spec": spec}


def rule(host: str | None, *paths: dict[str, Any]) -> dict[str, Any]:
    r: dict[str, Any] = {"http": {"paths": list(paths)}}
    if host is not None:
        r["host"] = host
    return r


def service(name: str, namespace: str = "default", ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": ports if ports is not None else [{"name": "http", "port": 80}], **spec}}


def endpoint_slice(service_name: str, addresses: list[str], port: int = 8080, port_name: str = "http",
                   namespace: str = "default", name: str | None = None, ready: bool | None = True) -> dict[str, Any]:
    conditions = {} if ready is None else {"ready": ready}
    return {
        "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": name or f"{service_name}-abc", "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": service_name}},
        "ports": [{"name": port_name, "port": port}],
        "endpoints": [{"addresses": [a], "conditions": conditions} for a in addresses],
    }


def served_service(name: str, *addresses: str, namespace: str = "default") -> list[dict[str, Any]]:
    return [service(name, namespace), endpoint_slice(name, list(addresses or ["10.0.0.1"]), namespace=namespace)]


def run(*objects: dict[str, Any], settings: TranslateSettings | None = None, **class_flags: Any) -> Translation:
    store = Store()
    store.replace((key_of(o), o) for o in objects)
    settings = settings or TranslateSettings(classes=ClassSettings(**class_flags))
    return translate(store.snapshot(), settings, NOW)


def server(translation: Translation, host: str | None) -> Server:
    if host is None:
        return translation.config.default_server
    for s in translation.config.servers:
        if s.name and s.name.host == host:
            return s
    raise AssertionError(f"no server for {host}")


def readable(upstream: str) -> str:
    """`u<hash>_default_a_80` → `default_a_80`, after checking the hash prefix is the right one."""
    namespace, service, port = upstream.split("_", 1)[1].split("_")
    assert upstream == upstream_name(namespace, service, int(port)), upstream
    return f"{namespace}_{service}_{port}"


def routes(s: Server) -> dict[str, str]:
    """`= /path` or `/path/` → 'upstream name' (as namespace_service_port) or 'status N'."""
    out = {}
    for loc in s.locations:
        b = loc.backend
        target = (b.upstream and readable(b.upstream)) or (f"{b.external_host}:{b.external_port}" if b.external_host else f"status {b.status}")
        out[("= " if loc.match == "exact" else "") + loc.path] = target
    return out


__all__ = ["ObjectRef"]
