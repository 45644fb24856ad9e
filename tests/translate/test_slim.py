"""What the Store keeps of an object (sources/slim.py): only what translate and the reporters read,
and translate's output for the slim objects is exactly its output for the full ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingress_ctrl.render import render
from ingress_ctrl.settings import ClassSettings, NginxSettings, ObjectRef, TranslateSettings
from ingress_ctrl.sources import slim as slim_module
from ingress_ctrl.sources.files import load_file
from ingress_ctrl.sources.slim import slim
from ingress_ctrl.state import Store, key_of
from ingress_ctrl.translate import translate
from ingress_ctrl.translate.model import Translation
from tests.fuzz import certs
from tests.fuzz.world import World, worlds
from tests.translate.objects import NOW, backend, endpoint_slice, ingress, ingress_class, path, rule, service

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MANAGED = [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _with_api_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as the API server returns it: the fields nothing here reads, added everywhere."""
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    if isinstance(meta, dict):
        meta.update(managedFields=MANAGED, uid="0b5c1d1e-4f36-4a0e-9a57-3f2a9b5c7d10", resourceVersion="4711",
                    generation=3, ownerReferences=[{"kind": "Deployment", "name": "x"}], finalizers=["example.com/f"])
        annotations = meta.setdefault("annotations", {})
        if isinstance(annotations, dict):
            annotations[LAST_APPLIED] = json.dumps(obj, skipkeys=True, default=repr)
            annotations["example.com/team"] = "a"
        labels = meta.setdefault("labels", {})
        if isinstance(labels, dict):
            labels["app.kubernetes.io/name"] = "web"
    spec = obj.get("spec")
    if obj.get("kind") == "Service" and isinstance(spec, dict):
        spec.update(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"], selector={"app": "web"}, sessionAffinity="None",
                    ipFamilies=["IPv4"], internalTrafficPolicy="Cluster")
        for port in _list(spec.get("ports")):
            if isinstance(port, dict):
                port.update(protocol="TCP", targetPort=8080, appProtocol="http")
        obj["status"] = {"loadBalancer": {}}
    if obj.get("kind") == "EndpointSlice":
        for endpoint in _list(obj.get("endpoints")):
            if isinstance(endpoint, dict):
                endpoint.update(nodeName="node-1", zone="z1", targetRef={"kind": "Pod", "name": "web-1", "namespace": "default",
                                                                          "uid": "1c0e7e4e-9a3a-4b84-9d8f-7e6e3a1d2b10"})
                if isinstance(endpoint.get("conditions"), dict):
                    endpoint["conditions"].update(serving=True, terminating=False)
        for port in _list(obj.get("ports")):
            if isinstance(port, dict):
                port["protocol"] = "TCP"
    if obj.get("kind") == "Endpoints":
        for subset in _list(obj.get("subsets")):
            if isinstance(subset, dict):
                subset["notReadyAddresses"] = [{"ip": "10.9.9.9"}]
    if obj.get("kind") == "Secret" and isinstance(obj.get("data"), dict):
        obj["data"]["ca.crt"] = obj["data"].get("tls.crt", "")
    if obj.get("kind") == "Ingress":
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ports": [{"port": 443, "protocol": "TCP"}]}]}}
    return obj


def _translate(objects: list[dict[str, Any]] | tuple[Any, ...], settings: TranslateSettings) -> Translation:
    store = Store()
    store.replace((key_of(o), o) for o in objects)
    return translate(store.snapshot(), settings, NOW)


def _keyed(objects: Any) -> list[Any]:
    """The objects the Store would take (key_of succeeds), so both sides hold the same keys."""
    kept = []
    for obj in objects:
        try:
            key_of(obj)
        except ValueError:
            continue
        kept.append(obj)
    return kept


def _world() -> tuple[list[dict[str, Any]], TranslateSettings]:
    crt, key = certs.pool()[certs.GOOD[0]]
    tls_secret = {"kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": "tls-a", "namespace": "default"},
                  "data": {"tls.crt": crt, "tls.key": key}}
    objects = [
        ingress_class(), ingress_class("other", controller="example.com/x", default=True),
        ingress("web", rule("web.example", path("/", "web"), path("/api", "api", "Exact"), path("/n", "web", port="http")),
                tls=[{"hosts": ["web.example"], "secretName": "tls-a"}], created="2024-01-01T00:00:00Z",
                annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "8m", "nginx.ingress.kubernetes.io/unknown": "1"}),
        ingress("legacy", rule("legacy.example", path("/", "web")), class_name=None,
                annotations={"kubernetes.io/ingress.class": "nginx"}),
        ingress("fallback", default_backend=backend("api")),
        ingress("snippet", rule("bad.example", path("/", "web")), annotations={"nginx.ingress.kubernetes.io/server-snippet": "x"}),
        ingress("resource", rule("res.example", {"path": "/", "pathType": "Prefix", "backend": {"resource": {"kind": "X", "name": "y"}}})),
        service("web", ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}]),
        service("api"), service("ext", type="ExternalName", externalName="db.example.com"),
        endpoint_slice("web", ["10.0.0.1", "10.0.0.2"], port=8080), endpoint_slice("web", ["10.0.0.3"], name="web-2", ready=False),
        endpoint_slice("api", ["10.0.1.1"], ready=None),
        {"kind": "Endpoints", "metadata": {"name": "ext", "namespace": "default"},
         "subsets": [{"addresses": [{"ip": "10.0.2.1"}], "ports": [{"name": "http", "port": 9000}]}]},
        tls_secret,
        {**copy.deepcopy(tls_secret), "metadata": {"name": "default-cert", "namespace": "default"}},
    ]
    settings = TranslateSettings(classes=ClassSettings(), default_backend_service=ObjectRef("default", "api"),
                                 default_ssl_certificate=ObjectRef("default", "default-cert"))
    return [_with_api_server_fields(o) for o in objects], settings


def test_slim_drops_what_nothing_reads() -> None:
    objects, _ = _world()
    slimmed = {(o["kind"], o["metadata"]["name"]): slim(o) for o in objects}
    web = slimmed[("Ingress", "web")]
    assert set(web["metadata"]) == {"name", "namespace", "creationTimestamp", "annotations", "uid", "resourceVersion", "generation"}
    assert web["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                                              "nginx.ingress.kubernetes.io/unknown": "1"}
    assert web["status"] == {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ports": [{"port": 443, "protocol": "TCP"}]}]}}
    assert slimmed[("Ingress", "legacy")]["metadata"]["annotations"] == {"kubernetes.io/ingress.class": "nginx"}
    assert slimmed[("Service", "web")] == {"kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                                          "spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
                                          "status": {"loadBalancer": {}}}
    web_slice = slimmed[("EndpointSlice", "web-abc")]
    assert web_slice["endpoints"][0] == {"addresses": ["10.0.0.1"], "conditions": {"ready": True}}
    assert web_slice["metadata"] == {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}}
    assert slimmed[("Endpoints", "ext")]["subsets"] == [{"addresses": [{"ip": "10.0.2.1"}], "ports": [{"name": "http", "port": 9000}]}]
    assert set(slimmed[("Secret", "tls-a")]["data"]) == {"tls.crt", "tls.key"}
    assert slimmed[("IngressClass", "other")]["metadata"]["annotations"] == {"ingressclass.kubernetes.io/is-default-class": "true"}
    assert "managedFields" not in json.dumps(list(slimmed.values()))


def test_translate_and_render_are_identical_for_slim_objects() -> None:
    objects, settings = _world()
    full, slimmed = _translate(objects, settings), _translate([slim(o) for o in objects], settings)
    assert slimmed == full
    assert len(full.served) == 3 and len(full.rejected) == 2 and len(full.problems) > 2  # it exercises all of it
    nginx = NginxSettings(state_dir=Path("/tmp/unused"))
    assert render(slimmed.config, nginx).text == render(full.config, nginx).text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(), extra=st.booleans())
def test_translate_is_identical_for_slim_objects_of_generated_worlds(world: World, extra: bool) -> None:
    """Hostile and mistyped fields included: a value slim does not expect is kept whole."""
    objects = _keyed(_with_api_server_fields(dict(o)) if extra else o for o in world.objects)
    assert _translate([slim(o) for o in objects], world.settings) == _translate(objects, world.settings)


def test_slim_is_idempotent_and_leaves_other_kinds_alone() -> None:
    objects, _ = _world()
    for obj in objects:
        assert slim(slim(obj)) == slim(obj)
    lease = {"kind": "Lease", "metadata": {"name": "x", "managedFields": MANAGED}}
    assert slim(lease) is lease


def test_equal_parts_are_shared_and_types_are_not_conflated() -> None:
    a = slim(endpoint_slice("a", ["10.0.0.1"], port=8080))
    b = slim(endpoint_slice("b", ["10.0.0.2"], port=8080))
    assert a["ports"] is b["ports"]
    assert a["endpoints"][0]["conditions"] is b["endpoints"][0]["conditions"]
    web = slim(ingress("w", rule("w.example", path("/", "web"), path("/a", "web"))))
    paths = web["spec"]["rules"][0]["http"]["paths"]
    assert paths[0]["backend"] is paths[1]["backend"]
    zero = slim(endpoint_slice("c", ["10.0.0.3"]) | {"endpoints": [{"addresses": ["10.0.0.3"], "conditions": {"ready": 0}}]})
    false = slim(endpoint_slice("d", ["10.0.0.4"], ready=False))
    assert zero["endpoints"][0]["conditions"]["ready"] == 0 and zero["endpoints"][0]["conditions"]["ready"] is not False
    assert false["endpoints"][0]["conditions"]["ready"] is False
    port_80 = slim(ingress("x", rule("x.example", path("/", "web", port=80))))
    text_80 = slim(ingress("y", rule("y.example", {"path": "/", "pathType": "Prefix",
                                                   "backend": {"service": {"name": "web", "port": {"number": "80"}}}})))
    number = port_80["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"]
    assert number == 80 and text_80["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"] == "80"


def test_sharing_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(slim_module, "SHARED_LIMIT", 3)
    monkeypatch.setattr(slim_module, "_shared", {})
    for port in range(10):
        slim(service(f"s{port}", ports=[{"name": "http", "port": port}]))
    assert len(slim_module._shared) <= 3
    big = {f"nginx.ingress.kubernetes.io/unknown-{n}": "x" * 100 for n in range(100)}
    slimmed = slim(ingress("big", rule("big.example", path("/", "web")), annotations=big))
    assert slimmed["metadata"]["annotations"] == big
    assert all(len(key) <= slim_module.SHARED_SIZE for key in slim_module._shared)


def test_folder_source_keeps_slim_objects(tmp_path: Path) -> None:
    objects, _ = _world()
    manifest = tmp_path / "world.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    loaded = load_file(manifest)
    assert [obj for _, obj in loaded] == [slim(o) for o in objects]
    assert all("managedFields" not in obj["metadata"] for _, obj in loaded)
