"""The Kubernetes source's memory-relevant parts, in-process: what it hands the Store (slim objects),
LIST by pages (the emulator pages as the API server does), and the Kopf settings that keep no
per-object state (no memory records, no last-handled state, short-lived workers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf
from kubernetes import client, config

from ingress_ctrl.report.kubeapi import PAGE, KubeApi
from ingress_ctrl.sources import kube
from ingress_ctrl.sources.kube_flags import WATCHED
from ingress_ctrl.sources.slim import slim
from ingress_ctrl.state import Store
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
