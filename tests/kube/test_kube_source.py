"""The Kubernetes source's memory-relevant parts, in-process: what it hands the Store (slim objects,
sharing what did not change with the version they replace), LIST by pages (the emulator pages as
the API server does), and the Kopf settings that keep no per-object state (no memory records, no
last-handled state, short-lived workers)."""

from __future__ import annotations

import asyncio
import copy
import datetime
import gc
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import kopf
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client, config

from ingress_ctrl.report.kubeapi import PAGE, KubeApi
from ingress_ctrl.settings import TranslateSettings
from ingress_ctrl.sources import kube
from ingress_ctrl.sources.kube_flags import WATCHED
from ingress_ctrl.sources.slim import reuse, slim
from ingress_ctrl.state import Store
from ingress_ctrl.translate import translate
from tests.kube.conftest import World

SERVICE = next(r for r in WATCHED if r.kind == "Service")
MANAGED = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]


def _service(name: str, port: int = 80) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "7",
                         "managedFields": MANAGED},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}}


class _Pages:
    """A KubeApi stand-in: `pages` yields the given pages, counting how many were fetched."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self._pages = pages
        self.fetched = 0

    async def pages(self, resource: Any, namespace: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        for page in self._pages if resource.kind == "Service" else []:
            self.fetched += 1
            yield [{"apiVersion": "v1", "kind": "Service", **item} for item in page]


def test_resync_keeps_slim_objects_page_by_page() -> None:
    store = Store()
    store.put(slim({"apiVersion": "v1", "kind": "Service", **_service("stale")}))
    api = _Pages([[_service("a"), _service("b")], [_service("c")]])
    source = kube.KubeSource(store, api, [])  # type: ignore[arg-type]
    asyncio.run(source.resync())
    services = store.snapshot().of("Service")
    assert sorted(name for _, name in services) == ["a", "b", "c"]
    assert services[("default", "a")] == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "default"},
                                          "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80}]}}
    assert api.fetched == 2 and not store._touched


def test_events_reach_the_store_slim() -> None:
    handed: list[tuple[Any, ...]] = []

    class Loop:
        def call_soon_threadsafe(self, *args: Any) -> None:
            handed.append(args)

    store = Store()
    source = kube.KubeSource(store, _Pages([]), [])  # type: ignore[arg-type]
    source._loop = Loop()  # type: ignore[assignment]
    source._handover(SERVICE, {"type": "ADDED", "object": _service("web")})
    apply, resource, event_type, obj = handed[0]
    assert obj == slim({"apiVersion": "v1", "kind": "Service", **_service("web")})
    assert "managedFields" not in obj["metadata"]
    apply(resource, event_type, obj)
    assert store.snapshot().get("Service", "default", "web") is obj


def test_kopf_keeps_no_per_object_state() -> None:
    settings = kopf.OperatorSettings()
    kube.configure_kopf(settings)
    assert settings.watching.chunk_size == PAGE
    assert settings.queueing.idle_timeout == kube.KOPF_IDLE_TIMEOUT < 1
    body = kopf.Body({"apiVersion": "v1", "kind": "Service", **_service("web")})
    assert settings.persistence.diffbase_storage.build(body=body) == {}
    assert settings.persistence.diffbase_storage.fetch(body=body) is None

    memories = kube._forgetful_memories()
    assert memories is not None

    async def recall_twice() -> None:
        raw = {"apiVersion": "v1", "kind": "Service", **_service("web")}
        first = await memories.recall(raw, noticed_by_listing=True)
        assert first.noticed_by_listing and await memories.recall(raw) is not first
        assert list(memories.iter_all_memories()) == []
    asyncio.run(recall_twice())


def test_list_comes_in_pages(world: World) -> None:
    count = 2 * PAGE + 7
    world.emulator.preload("services", *({"metadata": {"name": f"page-{n:04d}", "namespace": "paging"},
                                         "spec": {"ports": [{"port": 80}]}} for n in range(count)))
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(world.emulator.kubeconfig(world.dir, "pages")), client_configuration=configuration)
    api = KubeApi(client.ApiClient(configuration))

    async def pages() -> list[list[dict[str, Any]]]:
        return [page async for page in api.pages(SERVICE, "paging")]
    found = asyncio.run(pages())
    assert [len(page) for page in found] == [PAGE, PAGE, 7]
    assert [o["metadata"]["name"] for page in found for o in page] == [f"page-{n:04d}" for n in range(count)]
    assert all(o["kind"] == "Service" and o["apiVersion"] == "v1" for page in found for o in page)


# --- a new version shares what did not change with the version the Store holds ------------------

INGRESS = next(r for r in WATCHED if r.kind == "Ingress")
SLICE = next(r for r in WATCHED if r.kind == "EndpointSlice")


def _ingress(i: int, version: str = "1", status: Any = None) -> dict[str, Any]:
    name = f"app-{i:04d}"
    paths = [{"path": p, "pathType": "Prefix", "backend": {"service": {"name": name, "port": {"number": 80}}}}
             for p in ("/api", "/static", "/")]
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": version, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
        "spec": {"rules": [{"host": f"{name}.example", "http": {"paths": paths}}],
                 "tls": [{"hosts": [f"{name}.example"], "secretName": f"{name}-tls"}]}}
    if status is not None:
        body["status"] = status
    return body


def _event(source: kube.KubeSource, resource: Any, event_type: str, body: dict[str, Any]) -> None:
    """What `_handover` does in Kopf's thread, then what the Store's loop does with it."""
    kind = resource.kind
    source._apply(resource, event_type, slim({"apiVersion": f"{resource.group}/{resource.version}", "kind": kind, **body}))


LB = {"loadBalancer": {"ingress": [{"ip": "10.0.0.7"}]}}


def test_a_status_change_shares_the_rest_with_the_version_it_replaces() -> None:
    store = Store()
    source = kube.KubeSource(store, _Pages([]), [])  # type: ignore[arg-type]
    _event(source, INGRESS, "ADDED", _ingress(1))
    held = store.get("Ingress", "default", "app-0001")
    version = store.version
    _event(source, INGRESS, "MODIFIED", _ingress(1, version="2", status=LB))  # our status write, come back
    now = store.get("Ingress", "default", "app-0001")
    assert now is not None and held is not None
    assert repr(now) == repr(slim({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", **_ingress(1, "2", LB)}))
    assert now["spec"] is held["spec"] and now["metadata"]["uid"] is held["metadata"]["uid"]
    assert now["metadata"]["resourceVersion"] == "2" and now["status"] == LB
    assert store.version == version  # a status alone starts no sync, as before


def test_equal_but_not_the_same_is_not_taken_from_the_held_version() -> None:
    store = Store()
    source = kube.KubeSource(store, _Pages([]), [])  # type: ignore[arg-type]
    body = {"metadata": {"name": "web-x", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": 1}}],
            "ports": [{"name": "http", "port": 80}]}
    _event(source, SLICE, "ADDED", body)
    changed = {**body, "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": True}}], "ports": [{"name": "http", "port": 8080}]}
    _event(source, SLICE, "MODIFIED", changed)
    now = store.get("EndpointSlice", "default", "web-x")
    assert now is not None and now["endpoints"][0]["conditions"]["ready"] is True
    assert repr(now) == repr(slim({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", **changed}))


_json = st.recursive(st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([1.0, 0.0, "1", "a", ""]),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
                     max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(old=_json, new=_json)
def test_reuse_gives_what_the_new_version_says(old: Any, new: Any) -> None:
    assert repr(reuse(old, new)) == repr(new)
    assert repr(reuse(new, new)) == repr(new) and reuse(new, copy.deepcopy(new)) is new


def test_translate_memos_no_longer_hold_a_second_copy_after_status_writes() -> None:
    """translate's memos keep the objects of the last syncs; after our status writes come back
    (no sync), each Ingress was held twice: the Store's new version and the memo's old one."""
    n = 1000
    store = Store()
    source = kube.KubeSource(store, _Pages([]), [])  # type: ignore[arg-type]
    for i in range(n):
        _event(source, INGRESS, "ADDED", _ingress(i))
    translation = translate(store.snapshot(), TranslateSettings(), datetime.datetime.now(datetime.timezone.utc))
    assert len(translation.served) == n
    updates = [_ingress(i, version="2", status=LB) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        copies = [slim({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", **body}) for body in updates]
        whole = tracemalloc.get_traced_memory()[0] - start  # what n new versions take, sharing nothing
        del copies
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        for body in updates:
            _event(source, INGRESS, "MODIFIED", body)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert all(store.get("Ingress", "default", f"app-{i:04d}")["status"] == LB for i in range(n))  # type: ignore[index]
    assert held < whole / 2, (held, whole)  # without sharing: held ≈ whole
